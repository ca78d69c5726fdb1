"""Loopback load test of `ladder serve`: N chat requests from C concurrent OpenAI SDK clients.

Baseline: the same requests made in-process through `ladder.models.service.chat`, one at a time
(no HTTP, no auth, no JSON). The ratio shows what the HTTP layer costs in throughput.

    python bench/serve.py --requests 200 --concurrency 8 --max-tokens 16
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
from openai import OpenAI

PROMPTS = [
    "Where is my parcel?",
    "How do I get a refund?",
    "Can I change my delivery address?",
    "My card was charged twice.",
    "How long does shipping take?",
    "Cancel my order please.",
]


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q / 100 * (len(s) - 1))))] if s else float("nan")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(home: str, port: int) -> tuple[subprocess.Popen, str]:
    env = {**os.environ, "LADDER_HOME": home, "LADDER_SERVER_RATE_LIMIT_RPM": "100000"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "ladder.cli.main", "serve", "--port", str(port), "--log-level", "warning"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    key = None
    deadline = time.time() + 120
    while key is None:
        line = proc.stdout.readline()
        if not line and proc.poll() is not None:
            raise RuntimeError("server exited")
        if line.strip().startswith("sk-ladder-"):
            key = line.strip()
        if time.time() > deadline:
            raise RuntimeError("no admin key printed")
    threading.Thread(target=lambda: [None for _ in proc.stdout], daemon=True).start()  # drain the log
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=2).status_code == 200:
                return proc, key
        except httpx.HTTPError:
            pass
        if time.time() > deadline:
            raise RuntimeError("server did not answer")
        time.sleep(0.2)


def run_http(base: str, key: str, model: str, n: int, conc: int, max_tokens: int) -> dict:
    client = OpenAI(base_url=base, api_key=key, max_retries=0, timeout=300)
    client.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}], max_tokens=2)  # load
    lat, errors, tokens = [], [], 0
    lock = threading.Lock()

    def one(i: int) -> None:
        nonlocal tokens
        t0 = time.perf_counter()
        try:
            r = client.chat.completions.create(
                model=model,
                max_tokens=max_tokens,
                seed=i,
                messages=[{"role": "user", "content": PROMPTS[i % len(PROMPTS)]}],
            )
            with lock:
                lat.append(time.perf_counter() - t0)
                tokens += r.usage.completion_tokens
        except Exception as e:  # counted and shown, the run goes on
            with lock:
                errors.append(repr(e)[:200])

    t0 = time.perf_counter()
    with ThreadPoolExecutor(conc) as pool:
        list(pool.map(one, range(n)))
    wall = time.perf_counter() - t0
    return {
        "n": n,
        "errors": len(errors),
        "first_error": errors[0] if errors else "",
        "wall_s": wall,
        "rps": len(lat) / wall,
        "p50_s": pct(lat, 50),
        "p95_s": pct(lat, 95),
        "tok_s": tokens / wall,
    }


def run_inprocess(model: str, n: int, max_tokens: int) -> dict:
    from ladder.models import service
    from ladder.models.types import ChatRequest

    lat = []
    service.chat(model, ChatRequest.of([{"role": "user", "content": "hi"}], max_tokens=2))
    t0 = time.perf_counter()
    for i in range(n):
        t = time.perf_counter()
        service.chat(
            model,
            ChatRequest.of([{"role": "user", "content": PROMPTS[i % len(PROMPTS)]}], max_tokens=max_tokens, seed=i),
        )
        lat.append(time.perf_counter() - t)
    wall = time.perf_counter() - t0
    return {"n": n, "errors": 0, "wall_s": wall, "rps": n / wall, "p50_s": pct(lat, 50), "p95_s": pct(lat, 95)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--max-tokens", type=int, default=16)
    ap.add_argument("--model", default="smollm2-135m-instruct")
    ap.add_argument("--baseline-requests", type=int, default=50)
    args = ap.parse_args()
    home = tempfile.mkdtemp(prefix="ladder-bench-")
    os.environ["LADDER_HOME"] = home
    port = free_port()
    proc, key = start_server(home, port)
    try:
        http = run_http(
            f"http://127.0.0.1:{port}/v1", key, args.model, args.requests, args.concurrency, args.max_tokens
        )
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    base = run_inprocess(args.model, args.baseline_requests, args.max_tokens)
    print(f"model {args.model}, max_tokens {args.max_tokens}, cpu cores {os.cpu_count()}")
    print(f"{'run':<28}{'requests':>9}{'errors':>8}{'req/s':>8}{'p50 s':>8}{'p95 s':>8}")
    print(
        f"{'HTTP, ' + str(args.concurrency) + ' clients':<28}{http['n']:>9}{http['errors']:>8}"
        f"{http['rps']:>8.2f}{http['p50_s']:>8.2f}{http['p95_s']:>8.2f}"
    )
    print(
        f"{'in-process, sequential':<28}{base['n']:>9}{base['errors']:>8}{base['rps']:>8.2f}"
        f"{base['p50_s']:>8.2f}{base['p95_s']:>8.2f}"
    )
    print(f"throughput ratio HTTP / in-process: {http['rps'] / base['rps']:.2f}")
    if http["errors"]:
        print("first error:", http["first_error"])


if __name__ == "__main__":
    main()
