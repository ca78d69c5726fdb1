"""Constrained decoding on CPU: xgrammar vs llguidance, side by side with SmolLM2's tokenizer.

For a 10-label choice and a nested JSON schema: the grammar compile time (tokenizer set-up
excluded, it is paid once per model) and the time to compute one next-token mask while a
valid answer is fed token by token. No model runs; only the grammar engines are timed.

    .venv/bin/pip install 'xgrammar>=0.2.8,<0.3'   # the candidate not chosen, to compare
    .venv/bin/python bench/constrained.py [--repeats 20]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import statistics
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

LABELS = [
    "billing",
    "card_lost",
    "card_arrival",
    "refund",
    "exchange_rate",
    "transfer_failed",
    "top_up",
    "pin_blocked",
    "account_closed",
    "other",
]
SCHEMA = {
    "type": "object",
    "properties": {
        "intent": {"type": "string", "enum": LABELS},
        "urgent": {"type": "boolean"},
        "customer": {
            "type": "object",
            "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
            "required": ["name", "age"],
        },
        "amounts": {"type": "array", "items": {"type": "number"}},
    },
    "required": ["intent", "urgent", "customer", "amounts"],
}
CHOICE_ANSWER = "transfer_failed"
JSON_ANSWER = json.dumps(
    {"intent": "refund", "urgent": True, "customer": {"name": "Ada Lovelace", "age": 36}, "amounts": [12.5, 3]},
    separators=(",", ":"),  # both libraries compiled to compact JSON, so the answers are alike
)


def choice_ebnf() -> str:
    return "root ::= " + " | ".join(json.dumps(x) for x in LABELS)


def timed(fn, repeats: int) -> float:
    """Median milliseconds of `repeats` calls."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def fresh_compiler(xgr, info):
    return xgr.GrammarCompiler(info, max_threads=1, cache_enabled=False)


def bench_xgrammar(hf_tok, answers: dict[str, list[int]], repeats: int) -> dict:
    import xgrammar as xgr

    info = xgr.TokenizerInfo.from_huggingface(hf_tok, vocab_size=len(hf_tok))
    out = {}
    for name, compile_fn in (
        ("choice", lambda c: c.compile_grammar(choice_ebnf())),
        ("json", lambda c: c.compile_json_schema(json.dumps(SCHEMA), any_whitespace=False, separators=(",", ":"))),
    ):
        # A fresh compiler each time: its own cache would otherwise make every repeat free.
        compile_ms = timed(lambda fn=compile_fn: fn(fresh_compiler(xgr, info)), repeats)
        compiled = compile_fn(xgr.GrammarCompiler(info, max_threads=1))
        mask = xgr.allocate_token_bitmask(1, info.vocab_size)
        per_token = []
        for _ in range(repeats):
            m = xgr.GrammarMatcher(compiled)
            for t in answers[name]:
                t0 = time.perf_counter()
                m.fill_next_token_bitmask(mask, 0)
                per_token.append((time.perf_counter() - t0) * 1e6)
                assert m.accept_token(t), (name, t)
        out[name] = (compile_ms, statistics.median(per_token))
    return out


def bench_llguidance(hf_tok, answers: dict[str, list[int]], repeats: int) -> dict:
    import llguidance
    import llguidance.hf
    import llguidance.torch

    lltok = llguidance.hf.from_tokenizer(hf_tok, n_vocab=len(hf_tok))
    grammars = {
        "choice": llguidance.grammar_from("lark", "start: " + " | ".join(json.dumps(x) for x in LABELS)),
        "json": llguidance.LLMatcher.grammar_from_json_schema(
            json.dumps(SCHEMA), defaults={"whitespace_flexible": False}
        ),
    }
    out = {}
    for name, grammar in grammars.items():
        # llguidance builds its lexer when the matcher is made: that is its compile step.
        compile_ms = timed(lambda g=grammar: llguidance.LLMatcher(lltok, g, log_level=0), repeats)
        mask = llguidance.torch.allocate_token_bitmask(1, lltok.vocab_size)
        per_token = []
        for _ in range(repeats):
            m = llguidance.LLMatcher(lltok, grammar, log_level=0)
            for t in answers[name]:
                t0 = time.perf_counter()
                llguidance.torch.fill_next_token_bitmask(m, mask, 0)
                per_token.append((time.perf_counter() - t0) * 1e6)
                assert m.consume_token(t), (name, t, m.get_error())
        out[name] = (compile_ms, statistics.median(per_token))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=20)
    args = ap.parse_args()
    import torch
    from transformers import AutoTokenizer

    from ladder.models.packaged import smollm2_gguf

    torch.set_num_threads(1)
    gguf = smollm2_gguf()
    hf_tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    answers = {
        "choice": hf_tok.encode(CHOICE_ANSWER, add_special_tokens=False),
        "json": hf_tok.encode(JSON_ANSWER, add_special_tokens=False),
    }
    print(f"{platform.machine()} · {os.cpu_count()} cores · SmolLM2 tokenizer ({len(hf_tok)} tokens)")
    print(f"{'library':<12} {'grammar':<8} {'compile ms':>11} {'mask µs/token':>14}")
    for lib, fn in (("xgrammar", bench_xgrammar), ("llguidance", bench_llguidance)):
        if importlib.util.find_spec(lib) is None:
            # xgrammar is not a dependency (see src/ladder/models/constrain_torch.py for why).
            print(f"{lib:<12} not installed: pip install {lib} to compare")
            continue
        for name, (compile_ms, mask_us) in fn(hf_tok, answers, args.repeats).items():
            print(f"{lib:<12} {name:<8} {compile_ms:>11.2f} {mask_us:>14.1f}")


if __name__ == "__main__":
    main()
