"""Generation speed, side by side in one run on the same prompts.

Single-stream decode tokens/s: ladder's llama.cpp backend, ladder's torch backend, and plain
`transformers.generate` as the baseline. Batched throughput of the torch backend at batch 1, 8
and 32. Prints a table and the ratios the targets are stated in.

    .venv/bin/python bench/generation.py [--tokens 64] [--model smollm2-135m-instruct]
"""

from __future__ import annotations

import argparse
import os
import platform
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

PROMPTS = [
    "Explain in a paragraph how a home router assigns addresses to devices.",
    "Write a short story about a lighthouse keeper.",
    "Describe the water cycle for a ten-year-old.",
    "Give me five tips for writing a clear support email.",
]


def single_stream(fn, n_tokens: int) -> float:
    """Decode tokens/s over all prompts (tokens generated / seconds)."""
    total_tokens, total_s = 0, 0.0
    for p in PROMPTS:
        t0 = time.perf_counter()
        n = fn(p, n_tokens)
        total_s += time.perf_counter() - t0
        total_tokens += n
    return total_tokens / total_s


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="smollm2-135m-instruct")
    ap.add_argument("--tokens", type=int, default=64)
    ap.add_argument("--batches", default="1,8,32")
    args = ap.parse_args()

    import torch

    from ladder.models import service
    from ladder.models.types import ChatRequest, GenerationParams, Message

    def req(p: str, n: int) -> ChatRequest:
        return ChatRequest([Message("user", p)], GenerationParams(max_tokens=n))

    llama = service.open_backend(args.model, backend="llamacpp")
    tb = service.open_backend(args.model, backend="torch")
    llama.chat(req("warm up", 4))
    tb.chat(req("warm up", 4))

    def tokens_of(backend):
        return lambda p, n: backend.chat(req(p, n)).usage.completion_tokens

    rows = [
        ("llama.cpp backend, 1 stream", single_stream(tokens_of(llama), args.tokens)),
        ("torch backend, 1 stream", single_stream(tokens_of(tb), args.tokens)),
    ]

    def plain_generate(p: str, n: int) -> int:
        ids = tb.tok.apply_chat_template(
            [{"role": "user", "content": p}], add_generation_prompt=True, return_tensors="pt", return_dict=True
        )
        with torch.inference_mode():
            out = tb.model.generate(**ids, max_new_tokens=n, do_sample=False)
        return int(out.shape[1] - ids["input_ids"].shape[1])

    rows.append(("transformers.generate (baseline), 1 stream", single_stream(plain_generate, args.tokens)))

    batch_rows = []
    for bs in [int(b) for b in args.batches.split(",")]:
        reqs = [req(PROMPTS[i % len(PROMPTS)], args.tokens) for i in range(bs)]
        t0 = time.perf_counter()
        out = tb.chat_batch(reqs)
        dt = time.perf_counter() - t0
        batch_rows.append((bs, sum(o.usage.completion_tokens for o in out) / dt))

    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, torch threads {torch.get_num_threads()}, "
        f"device {tb.device}; model {args.model}; {args.tokens} new tokens per request"
    )
    print(f"\n{'single stream':45s} {'tokens/s':>10s}")
    for name, tps in rows:
        print(f"{name:45s} {tps:10.1f}")
    base = rows[2][1]
    print(
        f"\nllama.cpp / transformers.generate: {rows[0][1] / base:.2f}x   "
        f"torch backend / transformers.generate: {rows[1][1] / base:.2f}x"
    )
    print(f"\n{'torch batch size':45s} {'tokens/s':>10s} {'vs batch 1':>10s}")
    b1 = batch_rows[0][1]
    for bs, tps in batch_rows:
        print(f"{bs:<45d} {tps:10.1f} {tps / b1:9.2f}x")


if __name__ == "__main__":
    main()
