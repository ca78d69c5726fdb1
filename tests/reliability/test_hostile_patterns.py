"""Catastrophic user patterns against a real server: every answer comes back and /api/health stays fast.

Bots whose regex parser, JSON Schema `pattern` or `patternProperties` backtrack exponentially on
the model's answer (and a `response_format` with such a pattern) are asked questions while a probe
hits /api/health every 100 ms. With `re` one such match held the interpreter for minutes; through
ladder's bounded matcher each one is cut off at its time bound and the answer counts as not valid.

The model is a real remote-backend model: a loopback OpenAI-compatible stub that answers with the
question reversed, so each answer is exactly the text that makes its pattern backtrack.
"""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.models import openai_stub_server
from tests.server.conftest import start_server

RUNS = "a" * 40
# (bot name, parser, answer the model gives): each answer makes its pattern backtrack exponentially.
BOTS = [
    ("nested-plus", {"kind": "regex", "pattern": r"(.+)+Z"}, RUNS),
    ("alternation", {"kind": "regex", "pattern": r"(a|aa)+$"}, RUNS + "!"),
    ("nested-star", {"kind": "regex", "pattern": r"(a*)*b"}, RUNS),
    ("words", {"kind": "regex", "pattern": r"^(\w+\s?)*$"}, RUNS + "!"),
    ("many-groups", {"kind": "regex", "pattern": r"(x+x+)+y"}, "x" * 40),
    (
        "schema-pattern",
        {"kind": "json", "schema": {"type": "object", "properties": {"v": {"type": "string", "pattern": "(.+)+Z"}}}},
        json.dumps({"v": RUNS}),
    ),
    (
        "schema-alternation",
        {"kind": "json", "schema": {"type": "object", "properties": {"v": {"type": "string", "pattern": "(a|aa)+$"}}}},
        json.dumps({"v": RUNS + "!"}),
    ),
    (
        "schema-keys",
        {
            "kind": "json",
            "schema": {
                "type": "object",
                "patternProperties": {"(a|aa)+$": {"type": "string"}},
                "additionalProperties": False,
            },
        },
        json.dumps({RUNS + "!": "x"}),
    ),
]
ROUNDS = 3  # each bot asked this many times over each route


@pytest.fixture
def hostile_server(ladder_home):
    from ladder.models import registry
    from ladder.server import keys

    stub, stub_url = openai_stub_server.start()
    registry.add_remote("echo", stub_url, "reverse")
    key = keys.create_key("default", admin=True)[1]
    server, thread, _, url = start_server()
    try:
        yield url, key
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        stub.shutdown()


class HealthProbe(threading.Thread):
    """GET /api/health every 100 ms; records how long each answer took (a timeout counts as 5 s)."""

    def __init__(self, url: str):
        super().__init__(daemon=True)
        self.url, self.latencies, self.stop = url + "/api/health", [], threading.Event()

    def run(self) -> None:
        with httpx.Client(timeout=5) as client:
            while not self.stop.is_set():
                t0 = time.perf_counter()
                try:
                    ok = client.get(self.url).status_code == 200
                except httpx.HTTPError:
                    ok = False
                self.latencies.append(time.perf_counter() - t0 if ok else 5.0)
                self.stop.wait(0.1)


def _requests() -> list[tuple[str, str, dict]]:
    """(what, path, body) of every request sent: bots over both routes, and response_format checks."""
    out = []
    for name, _, answer in BOTS:
        question = answer[::-1]  # the stub answers with the question reversed
        for _ in range(ROUNDS):
            out.append((name, f"/api/bots/{name}/chat", {"messages": question}))
            out.append(
                (
                    name,
                    "/v1/chat/completions",
                    {"model": f"bot:{name}", "messages": [{"role": "user", "content": question}]},
                )
            )
    for pattern, value in (("(.+)+Z", RUNS), ("(a|aa)+$", RUNS + "!"), ("^(\\w+\\s?)*$", RUNS + "!")):
        schema = {"type": "object", "properties": {"v": {"type": "string", "pattern": pattern}}, "required": ["v"]}
        body = {
            "model": "echo",
            "messages": [{"role": "user", "content": json.dumps({"v": value})[::-1]}],
            "response_format": {"type": "json_schema", "json_schema": {"name": "v", "schema": schema}},
        }
        out += [(f"response_format {pattern}", "/v1/chat/completions", body)] * ROUNDS
    return out


def _well_formed(path: str, status: int, body: dict) -> bool:
    if status >= 500:
        return False
    if status != 200:  # refused: it must say why, in OpenAI's error shape
        return isinstance(body.get("error"), dict) and bool(body["error"].get("message"))
    if path.startswith("/api/bots/"):
        return body.get("valid") is False and "text" in body  # the pattern ran out of time: not valid
    return body["choices"][0]["message"]["content"] is not None


def test_hostile_patterns_never_freeze_the_server(hostile_server):
    url, key = hostile_server
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=url, headers=headers, timeout=30) as client:
        for name, parser, _ in BOTS:
            r = client.post("/api/bots", json={"name": name, "config": {"model": "echo", "parser": parser}})
            assert r.status_code == 200, r.text
    probe = HealthProbe(url)
    probe.start()
    results: list[tuple[str, bool, float, str]] = []

    def send(item: tuple[str, str, dict]) -> None:
        what, path, body = item
        t0 = time.perf_counter()
        with httpx.Client(base_url=url, headers=headers, timeout=60) as client:
            r = client.post(path, json=body)
        results.append((what, _well_formed(path, r.status_code, r.json()), time.perf_counter() - t0, r.text[:300]))

    t0 = time.perf_counter()
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(send, _requests()))
    elapsed = time.perf_counter() - t0
    time.sleep(0.3)
    probe.stop.set()
    probe.join(timeout=10)

    failed = [r for r in results if not r[1]]
    worst = max(probe.latencies)
    print(
        f"\nRELIABILITY hostile_patterns: tried={len(results)} clean={len(results) - len(failed)} "
        f"failed={len(failed)}; health probes={len(probe.latencies)} max={worst * 1000:.0f} ms; "
        f"slowest answer {max(r[2] for r in results):.2f} s; all in {elapsed:.1f} s"
    )
    assert not failed, failed[:3]
    assert len(probe.latencies) >= 5
    assert worst < 1.0, f"/api/health took {worst:.2f} s while patterns were matched"
