"""JSON-Schema answers on the default model: free decoding (instruction, check, one retry) vs the output contract.

Both arms send the same requests through `OutputContract` (the path /v1/chat/completions, bots and
evals share). The baseline strips the decoding constraint, as the server did before; the project
arm keeps it, so each backend decodes under the schema where it can. Per arm: requests tried,
valid on the first answer, valid after the retry, cut at max_tokens, refused (422), the backend's
constraint_mode and the mean time per request. Usage:
    python bench/response_format.py [--n 12] [--max-tokens 96] [--model NAME] [--backend llamacpp|torch]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import tempfile
import time
from collections import Counter

SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "city": {"type": "string"},
        "order": {"type": "string", "pattern": "^[A-Z]{2}-[0-9]{4}$"},
        "items": {"type": "integer"},
        "urgent": {"type": "boolean"},
    },
    "required": ["name", "city", "order", "items", "urgent"],
    "additionalProperties": False,
}
TEXTS = [
    "Hi, this is Maria Lopez from Madrid. Order AB-1234 arrived with 3 items missing, please hurry!",
    "John Smith (Leeds) here: my order QX-9081 of 2 items never came. No rush.",
    "Order ZZ-0042, 5 items, for Akira Tanaka in Osaka. It is urgent, the party is tomorrow.",
    "Peter from Berlin. I got 1 item of order DE-7777 broken. Whenever you can.",
    "Amelie Durand, Lyon: order FR-3141 with 4 items is late. Urgent please.",
    "Hello, Sam Okoro in Lagos, order NG-2718, 6 items, not urgent at all.",
]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=12)
    ap.add_argument("--max-tokens", type=int, default=96)
    ap.add_argument("--model", default=None)
    ap.add_argument("--backend", default=None)
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("LADDER_HOME", tempfile.mkdtemp(prefix="ladder-bench-rf-"))

    from ladder.models import service
    from ladder.models.types import ChatRequest
    from ladder.pipelines.output_contract import InvalidModelOutput, OutputContract, runs_locally
    from ladder.settings import get_settings
    from ladder.store.db import DEFAULT_PROJECT

    model = args.model or get_settings().default_model
    contract = OutputContract.json_schema(SCHEMA)
    service.open_backend(model, backend=args.backend)  # loading is not request time
    local = runs_locally(model, args.backend, DEFAULT_PROJECT)

    def arm(constrained: bool) -> dict:
        tally: Counter = Counter()
        modes: Counter = Counter()
        t0 = time.perf_counter()
        for i in range(args.n):
            req = ChatRequest.of(
                [{"role": "user", "content": "Extract the order details.\n\n" + TEXTS[i % len(TEXTS)]}],
                max_tokens=args.max_tokens,
                seed=i,
            )
            req = contract.apply(req)
            if not constrained:
                req = ChatRequest(req.messages, dataclasses.replace(req.params, constraint=None))
            attempts = []

            def generate(attempt: int, req=req, attempts=attempts):
                params = dataclasses.replace(req.params, seed=(req.params.seed or 0) + attempt)
                resp = service.chat(model, ChatRequest(list(req.messages), params), backend=args.backend)
                attempts.append(resp)
                modes[getattr(resp, "constraint_mode", None) or "none reported"] += 1
                return resp

            tally["tried"] += 1
            try:
                # free decoding is the old path whatever the backend: checked, retried, refused
                resp, _ = contract.enforce(generate, local=constrained and local)
            except InvalidModelOutput:
                tally["refused"] += 1
                continue
            if resp.finish_reason == "length" and not contract.check(resp.text).ok:
                tally["truncated"] += 1
            elif len(attempts) == 1:
                tally["valid_first"] += 1
            else:
                tally["valid_retry"] += 1
        tally["ms_per_request"] = (time.perf_counter() - t0) * 1000 / max(1, args.n)
        return {"tally": tally, "modes": dict(modes)}

    free, contracted = arm(False), arm(True)
    print(f"model {model} (backend {args.backend or 'its own'}), {args.n} requests, max_tokens {args.max_tokens}")
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs")
    cols = ("tried", "valid_first", "valid_retry", "truncated", "refused", "ms_per_request")
    print(f"{'arm':<28}" + "".join(f"{c:>15}" for c in cols) + "  constraint_mode")
    for name, r in (("free (instruction+retry)", free), ("output contract (constraint)", contracted)):
        t = r["tally"]
        cells = "".join(f"{t[c]:>15.0f}" for c in cols)
        print(f"{name:<28}{cells}  {r['modes']}")
    valid = lambda r: r["tally"]["valid_first"] + r["tally"]["valid_retry"]  # noqa: E731
    print(f"valid answers, contract / free: {valid(contracted)} / {valid(free)}")


if __name__ == "__main__":
    main()
