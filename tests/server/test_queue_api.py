"""Evals and climbs over HTTP are durable tasks: a restart loses none, cancels work, bad requests are 4xx at once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from ladder.store.db import get_db
from tests.queue.helpers import BOT, eval_rows, wait_for
from tests.server.conftest import free_port, start_server

ROOT = Path(__file__).resolve().parents[2]


def _h(key: str) -> dict:
    return {"Authorization": f"Bearer {key}"}


def _upload(url: str, key: str, data: bytes, name: str = "test.jsonl") -> str:
    r = httpx.post(url + "/v1/files", headers=_h(key), data={"purpose": "eval"}, files={"file": (name, data)})
    assert r.status_code == 200, r.text
    return r.json()["id"]


def _bot(url: str, key: str, name: str, config: dict) -> None:
    r = httpx.post(url + "/api/bots", json={"name": name, "config": config}, headers=_h(key))
    assert r.status_code == 200, r.text


def _get(url: str, key: str, path: str) -> dict:
    r = httpx.get(url + path, headers=_h(key), timeout=30)
    assert r.status_code == 200, r.text
    return r.json()


def _run(*args: str, env: dict, log: Path) -> subprocess.Popen:
    with open(log, "ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "ladder.cli.main", *args], cwd=ROOT, env=env, stdout=out, stderr=out
        )


def test_a_restart_loses_nothing(tiny_model, ladder_home, tmp_path, monkeypatch):
    """Queued on a server without a worker, that server stopped, run by `ladder worker`, read on a new server."""
    from ladder.server import keys

    admin = keys.create_key("default", admin=True)[1]
    env = {**os.environ, "LADDER_SERVE_WORKER": "0", "OMP_NUM_THREADS": "1", "LADDER_THREADS": "1"}
    log, port = tmp_path / "processes.log", free_port()
    url = f"http://127.0.0.1:{port}"
    server = _run("serve", "--port", str(port), "--log-level", "warning", env=env, log=log)
    try:
        wait_for(lambda: _healthy(url), timeout=60, every=0.1, what=f"the server:\n{log.read_text()[-2000:]}")
        _bot(url, admin, "judge", {"model": tiny_model, **BOT})
        started = httpx.post(
            url + "/api/evals", json={"bot": "judge", "test_file": _upload(url, admin, eval_rows(4))}, headers=_h(admin)
        )
        assert started.status_code == 200, started.text
        task = started.json()
        assert task["status"] == "queued" and task["id"].startswith("eval-") and task["bot"] == "judge"
        time.sleep(1.0)
        assert _get(url, admin, f"/api/evals/{task['id']}")["status"] == "queued"  # this server only enqueues
        assert [t["id"] for t in _get(url, admin, "/api/evals")["tasks"]] == [task["id"]]
    finally:
        server.send_signal(signal.SIGTERM)
        code = server.wait(30)
    assert code in (0, -signal.SIGTERM), log.read_text()[-3000:]  # a clean stop: its lifespan ran

    worker = _run("worker", "--kinds", "eval", "--idle-exit", "5", "--interval", "0.2", env=env, log=log)
    assert worker.wait(180) == 0, log.read_text()[-3000:]

    monkeypatch.setenv("LADDER_SERVE_WORKER", "0")
    again, thread, _, url = start_server()  # a new server (reads only)
    try:
        done = _get(url, admin, f"/api/evals/{task['id']}")
        listing = _get(url, admin, "/api/evals")
    finally:
        again.should_exit = True
        thread.join(10)
    assert done["status"] == "succeeded", done
    assert done["attempts"] == 1 and done["progress"] == {"done": 4, "total": 4}
    assert done["results"]["n"] == 4 and len(done["results"]["items"]) == 4
    assert listing["tasks"][0]["run_id"] == done["run_id"] == listing["data"][0]["id"]


def _healthy(url: str) -> bool:
    try:
        return httpx.get(url + "/api/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def test_cancel_a_queued_and_a_running_task(make_server, tiny_model, monkeypatch):
    monkeypatch.setenv("LADDER_QUEUE_HEARTBEAT_S", "0.1")
    srv = make_server()  # its embedded worker runs one task at a time
    url, key = srv.url, srv.admin_key
    _bot(url, key, "talker", {"model": tiny_model, "max_tokens": 48})
    _bot(url, key, "judge", {"model": tiny_model, **BOT})
    long = httpx.post(
        url + "/api/evals", json={"bot": "talker", "test_file": _upload(url, key, eval_rows(96))}, headers=_h(key)
    )
    short = httpx.post(
        url + "/api/evals", json={"bot": "judge", "test_file": _upload(url, key, eval_rows(4))}, headers=_h(key)
    )
    a, b = long.json()["id"], short.json()["id"]
    wait_for(
        lambda: (_get(url, key, f"/api/evals/{a}")["progress"] or {}).get("done"), what="the long eval's first batch"
    )
    assert _get(url, key, f"/api/evals/{b}")["status"] == "queued"  # waiting behind the running one

    c = httpx.post(url + f"/api/evals/{b}/cancel", headers=_h(key)).json()
    assert c["status"] == "cancelled" and c["cancel_requested"] and c["finished_at"]
    r = httpx.post(url + f"/api/evals/{a}/cancel", headers=_h(key)).json()
    assert r["status"] == "running" and r["cancel_requested"]
    ended = wait_for(lambda: (t := _get(url, key, f"/api/evals/{a}"))["status"] != "running" and t, what="the stop")
    assert ended["status"] == "cancelled" and "results" not in ended and ended["run_id"] is None
    assert 0 < ended["progress"]["done"] < 96  # stopped at an item boundary, not run to the end
    assert get_db().one("SELECT COUNT(*) AS n FROM eval_runs")["n"] == 0
    again = httpx.post(url + f"/api/evals/{a}/cancel", headers=_h(key))
    assert again.status_code == 409 and "already cancelled" in again.json()["error"]["message"]
    assert _get(url, key, f"/api/evals/{b}")["status"] == "cancelled"  # never run by the worker
    other = httpx.post(url + f"/api/evals/{a}/cancel", headers=_h(srv.key_b))
    assert other.status_code == 404  # another project's task is not there


def test_cancel_a_queued_climb(make_server, tiny_model, monkeypatch):
    monkeypatch.setenv("LADDER_SERVE_WORKER", "0")
    srv = make_server()
    test = _upload(srv.url, srv.admin_key, eval_rows(4))
    body = {"train_file": test, "test_file": test, "model": tiny_model, "target": "accuracy=0", "tune": False}
    started = httpx.post(srv.url + "/api/climbs", json=body, headers=_h(srv.admin_key)).json()
    assert started["status"] == "queued" and started["object"] == "climb.task" and "bot" not in started
    c = httpx.post(srv.url + f"/api/climbs/{started['id']}/cancel", headers=_h(srv.admin_key)).json()
    assert c["status"] == "cancelled"
    assert httpx.get(srv.url + f"/api/evals/{started['id']}", headers=_h(srv.admin_key)).status_code == 404
    report = httpx.get(srv.url + f"/api/climbs/{started['id']}/report", headers=_h(srv.admin_key))
    assert report.status_code == 404 and "status cancelled" in report.json()["error"]["message"]


@pytest.fixture
def client(ladder_home):
    from ladder.server.app import create_app
    from ladder.server.config import ServerConfig

    return TestClient(create_app(ServerConfig(require_keys=False)))  # no lifespan: nothing runs tasks


def test_bad_requests_are_refused_at_once_naming_the_field(client, tiny_model):
    from ladder.pipelines import service

    service.create_bot("judge", {"model": tiny_model, **BOT})

    def upload(data: bytes, name: str) -> str:
        return client.post("/v1/files", data={"purpose": "eval"}, files={"file": (name, data)}).json()["id"]

    good, broken = upload(eval_rows(4), "test.jsonl"), upload(b'{"neither": 1}\n', "broken.jsonl")
    cases = [
        ("/api/evals", {"bot": "nobody", "test_file": good}, 404, "bot"),
        ("/api/evals", {"bot": "judge", "test_file": broken}, 400, "test_file"),
        ("/api/evals", {"bot": "judge", "test_file": good, "metrics": ["vibes"]}, 400, "metric"),
        ("/api/climbs", {"train_file": broken, "test_file": good}, 400, "train_file"),
        ("/api/climbs", {"train_file": good, "test_file": broken}, 400, "test_file"),
        ("/api/climbs", {"train_file": good, "test_file": good, "target": "accuracy"}, 400, "target"),
        ("/api/climbs", {"train_file": good, "test_file": good, "task": "poetry"}, 400, "task"),
    ]
    for path, body, status, param in cases:
        r = client.post(path, json=body)
        assert (r.status_code, r.json()["error"]["param"]) == (status, param), (path, body, r.text)
    assert "broken.jsonl" in client.post("/api/evals", json={"bot": "judge", "test_file": broken}).text
    assert get_db().one("SELECT COUNT(*) AS n FROM tasks")["n"] == 0  # nothing was queued
    assert client.get("/api/evals/eval-" + "a" * 24).status_code == 404
    ok = client.post("/api/evals", json={"bot": "judge", "test_file": good}).json()
    assert ok["status"] == "queued" and client.get(f"/api/climbs/{ok['id']}").status_code == 404


def test_a_climb_shows_its_rung_tasks_and_the_one_slot_server_worker_runs_them(make_server, tiny_model):
    srv = make_server()  # the embedded worker: one slot for the climb and its rungs
    url, key = srv.url, srv.admin_key
    train = _upload(url, key, eval_rows(12), "train.jsonl")
    body = {"train_file": train, "test_file": _upload(url, key, eval_rows(4)), "model": tiny_model}
    body |= {"target": "accuracy=100.5", "tune": False}  # never met: every rung runs, one after another
    started = httpx.post(url + "/api/climbs", json=body, headers=_h(key)).json()
    done = wait_for(lambda: (t := _get(url, key, f"/api/climbs/{started['id']}"))["status"] == "succeeded" and t)
    names = [r["name"] for r in done["rungs"]]
    assert names == ["prompt", "few-shot fixed k=4", "few-shot retrieved k=4"]
    assert all(r["object"] == "rung.task" and r["status"] == "succeeded" and r["run_id"] for r in done["rungs"])
    stored = {r["name"]: r["run"] for r in done["results"]["summary"]["rungs"] if r["run"]}
    assert stored == {r["name"]: r["run_id"] for r in done["rungs"]}  # the climb is made of its rungs' runs
    assert done["progress"]["done"] == done["progress"]["total"] == 3
