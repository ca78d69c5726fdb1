"""Batched vs one-at-a-time evaluation of a classification test set (default 200 items) on the default model.

Prints a table with items/s for: one request at a time on the torch backend (baseline), one at a time on
llama.cpp (the serving path of the default model), and batched on torch (what `ladder eval` does), and
the batched/baseline ratio. Responses are not cached here. Usage:
    python bench/eval.py [--n 200] [--batch-size 32] [--threads N]
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: library default)")
    ap.add_argument("--skip-llamacpp", action="store_true")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("LADDER_HOME", tempfile.mkdtemp(prefix="ladder-bench-eval-"))
    if args.threads:
        os.environ["LADDER_THREADS"] = str(args.threads)

    from ladder import samples
    from ladder.climb import tasks
    from ladder.evals.runner import run_eval
    from ladder.evals.testset import read_test_set
    from ladder.models import service
    from ladder.pipelines.pipeline import Pipeline
    from ladder.settings import get_settings

    items = (read_test_set(samples.helpdesk_test()) + read_test_set(samples.helpdesk_train()))[: args.n]
    model = get_settings().default_model
    # The label-set answers fit in 8 tokens; a fixed figure keeps the runs comparable.
    cfg = tasks.zero_shot_config("classification", items, model, samples.helpdesk_labels(), max_tokens=8)
    pipe = Pipeline(cfg)
    service.open_backend(model, backend="torch")  # loading is not what is measured
    rows = []

    def measure(label: str, backend: str, batch_size: int) -> None:
        t0 = time.perf_counter()
        run = run_eval(
            pipe, items, batch_size=batch_size, backend=backend, use_cache=False, latency_sample=0, store=False
        )
        dt = time.perf_counter() - t0
        rows.append((label, dt, len(items) / dt, run.value))
        print(f"{label:<32} {dt:8.1f} s  {len(items) / dt:6.2f} items/s  accuracy {run.value:.3f}", flush=True)

    print(f"{len(items)} items, model {model}, {platform.processor() or platform.machine()}, {os.cpu_count()} cores")
    measure("one at a time (torch)", "torch", 1)
    if not args.skip_llamacpp:
        service.open_backend(model, backend="llamacpp")
        measure("one at a time (llama.cpp)", "llamacpp", 1)
    measure(f"batched (torch, {args.batch_size} per pass)", "torch", args.batch_size)
    base, batched = rows[0][1], rows[-1][1]
    print(f"\nbatched vs one at a time on torch: {base / batched:.2f}x faster")
    if not args.skip_llamacpp:
        print(f"batched torch vs one at a time on llama.cpp: {rows[1][1] / batched:.2f}x")


if __name__ == "__main__":
    main()
