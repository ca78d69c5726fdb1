"""Label probabilities on llama.cpp: one decode per label after the batch (before) vs the label trie in place.

The help-desk sample's retrieved few-shot rung (11 labels, ~270 prompt tokens) on the default
model, the same items through both arms of one run:
- before: every label decoded on its own (shared prefixes once), after the whole generation chunk,
  so the context no longer holds the item's prompt and scoring evaluates it again;
- ladder: every label is its own sequence in one batch, scored right after its own generation.
Prints seconds per item for generation and for scoring, the ratio, and the largest difference in
a label probability between the arms (they must agree). Usage:
    python bench/label_scoring.py [--n 12]
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=12, help="test items per arm")
    args = ap.parse_args()
    os.environ.setdefault("LADDER_HOME", tempfile.mkdtemp(prefix="ladder-bench-"))

    from ladder import samples
    from ladder.climb import tasks as T
    from ladder.evals.testset import read_test_set, spread
    from ladder.models import service
    from ladder.pipelines.pipeline import Pipeline
    from ladder.settings import get_settings

    model = get_settings().default_model
    train = read_test_set(samples.helpdesk_train())
    test = spread(read_test_set(samples.helpdesk_test()), args.n)
    labels = T.label_set(train, test)
    cfg = T.zero_shot_config("classification", train, model, labels).replace(
        few_shot=[T.shot(t) for t in train], few_shot_mode="retrieved", few_shot_k=4
    )
    backend = service.open_backend(model, backend="llamacpp")
    slots = backend.seq_slots

    class Before(Pipeline):
        def _scores_in_place(self, backend):  # the order before: the chunk generated, then scored
            return False

    arms = {}
    for name, pipe, seq_slots in (("before", Before(cfg), 1), ("ladder", Pipeline(cfg), slots)):
        backend.seq_slots = seq_slots
        pipe.run_batch([t.messages for t in test[:2]], backend="llamacpp")  # warm: model load, grammar
        t0 = time.perf_counter()
        results = pipe.run_batch([t.messages for t in test], backend="llamacpp")
        wall = time.perf_counter() - t0
        arms[name] = (wall / len(test), sum(r.scoring_ms for r in results) / 1000 / len(test), results)
    backend.seq_slots = slots

    print(f"{platform.machine()}, {os.cpu_count()} CPUs; {model} on llama.cpp; {len(test)} items, {len(labels)} labels")
    print(f"{'arm':<8}{'s/item':>8}{'scoring s/item':>16}")
    for name, (per_item, scoring, _) in arms.items():
        print(f"{name:<8}{per_item:>8.2f}{scoring:>16.2f}")
    diff = max(
        abs(a.label_probs[k] - b.label_probs[k])
        for a, b in zip(arms["before"][2], arms["ladder"][2], strict=True)
        for k in a.label_probs
    )
    (before, before_scoring, _), (ladder, ladder_scoring, _) = arms["before"], arms["ladder"]
    print(
        f"scoring: {before_scoring / ladder_scoring:.2f}x faster; per item {before / ladder:.2f}x; "
        f"largest probability difference {diff:.4f}"
    )


if __name__ == "__main__":
    main()
