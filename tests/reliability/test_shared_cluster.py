"""A deployment in miniature on one PostgreSQL: 2 API servers and 2 workers (as two machines). Six jobs
(two fine-tunes on the tiny model, three evals, one climb) are submitted through both servers; one
worker is killed with SIGKILL while it runs one of them. All six finish exactly once: one tuned model
per fine-tune, one usage row per training, one stored run per eval, and both servers answer the same."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ladder.settings import reset_settings
from ladder.store.db import get_db, reset_dbs
from tests.reliability.shared_servers import machine_env, serve
from tests.server.test_tuning_api import FAST_HP, chat_jsonl

LEASES = {"LADDER_QUEUE_LEASE_S": "4", "LADDER_TUNING_LEASE_S": "4", "LADDER_SERVE_WORKER": "0"}


def _eval_rows(n: int) -> bytes:
    labels = ["billing", "shipping", "refund"]
    return b"".join(
        json.dumps({"input": f"message {i} about {labels[i % 3]}", "output": labels[i % 3]}).encode() + b"\n"
        for i in range(n)
    )


def _worker(env: dict, log: Path) -> subprocess.Popen:
    with open(log, "wb") as out:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(
            [sys.executable, "-m", "ladder.cli.main", "worker", "--kinds", "tune,eval,climb", "--interval", "0.3"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def status_events(client, job_id: str) -> list[dict]:
    r = client.get(f"/v1/fine_tuning/jobs/{job_id}/events", params={"limit": 100})
    assert r.status_code == 200, r.text
    return r.json()["data"]


def _running_on(host: str) -> list[str]:
    """Ids of the jobs and tasks a worker of this machine is running now."""
    db = get_db()
    tasks = db.query("SELECT id FROM tasks WHERE status='running' AND worker_host=?", (host,))
    tunes = db.query("SELECT id FROM ft_jobs WHERE status='running' AND worker_host=?", (host,))
    return [r[0] for r in tasks] + [r[0] for r in tunes]


@pytest.mark.slow
def test_six_jobs_through_two_servers_finish_once_when_a_worker_is_killed(
    postgres_url, tmp_path, monkeypatch, tiny_model_dir
):
    from ladder.models import registry
    from ladder.server import keys

    monkeypatch.setenv("LADDER_DATABASE_URL", postgres_url)
    reset_settings()
    reset_dbs()
    _, key = keys.create_key("default", admin=True)
    registry.add_local("tiny-llama", tiny_model_dir)
    blobs, shared = tmp_path / "blobs", tmp_path / "shared"
    env = {n: machine_env(postgres_url, tmp_path / n, blobs, LADDER_SHARED_DIR=str(shared), **LEASES) for n in "ab"}
    servers = [serve(env[n], tmp_path / f"server-{n}.log", key) for n in "ab"]
    workers = {n: _worker({**env[n], "LADDER_HOST_NAME": f"machine-{n}"}, tmp_path / f"worker-{n}.log") for n in "ab"}
    try:
        a, b = (s.client() for s in servers)
        train = a.post("/v1/files", files={"file": ("train.jsonl", chat_jsonl(12))}, data={"purpose": "fine-tune"})
        test = b.post("/v1/files", files={"file": ("test.jsonl", _eval_rows(6))}, data={"purpose": "eval"})
        assert train.status_code == 200 and test.status_code == 200, (train.text, test.text)
        bot = {"name": "router", "config": {"model": "tiny-llama", "max_tokens": 3}}
        assert a.post("/api/bots", json=bot).status_code == 200
        hp = {"method": {"type": "supervised", "supervised": {"hyperparameters": {**FAST_HP, "n_epochs": 4}}}}
        tunes = [
            c.post(
                "/v1/fine_tuning/jobs",
                json={"training_file": train.json()["id"], "model": "tiny-llama", "suffix": f"s{i}", "seed": i, **hp},
            )
            for i, c in enumerate((a, b))
        ]
        evals = [c.post("/api/evals", json={"bot": "router", "test_file": test.json()["id"]}) for c in (a, b, a)]
        climb = b.post(
            "/api/climbs",
            json={
                "train_file": train.json()["id"],
                "test_file": test.json()["id"],
                "model": "tiny-llama",
                "tune": False,
            },
        )
        submitted = [r.json()["id"] for r in tunes + evals + [climb]]
        assert all(r.status_code == 200 for r in tunes + evals + [climb]), [r.text for r in tunes + evals + [climb]]

        # Kill machine a's worker (and the training process it started) while it trains, after a checkpoint:
        # machine b must resume that fine-tune from the checkpoint on the shared mount.
        def training_on_a() -> str | None:
            row = get_db().one(
                "SELECT j.id FROM ft_jobs j WHERE j.status='running' AND j.worker_host='machine-a'"
                " AND EXISTS (SELECT 1 FROM ft_checkpoints c WHERE c.job_id = j.id)"
            )
            return row[0] if row else None

        deadline = time.monotonic() + 240
        while not (resumed_job := training_on_a()):
            assert time.monotonic() < deadline, "worker a never trained past a checkpoint"
            time.sleep(0.05)
        killed = _running_on("machine-a")
        tuning_pid = get_db().one("SELECT pid FROM ft_worker WHERE host='machine-a'")
        os.killpg(workers["a"].pid, signal.SIGKILL)
        if tuning_pid:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(tuning_pid[0], signal.SIGKILL)
        workers["a"].wait(10)

        def status(job_id: str, client) -> dict:
            path = (
                f"/v1/fine_tuning/jobs/{job_id}"
                if job_id.startswith("ftjob")
                else (f"/api/evals/{job_id}" if job_id.startswith("eval") else f"/api/climbs/{job_id}")
            )
            r = client.get(path)
            assert r.status_code == 200, r.text
            return r.json()

        deadline = time.monotonic() + 600
        while True:
            states = {j: status(j, a)["status"] for j in submitted}
            if all(s in ("succeeded", "failed", "cancelled") for s in states.values()):
                break
            unfinished = {j: s for j, s in states.items() if s not in ("succeeded", "failed", "cancelled")}
            assert time.monotonic() < deadline, {j: status(j, a) for j in unfinished}
            time.sleep(1)
        assert set(states.values()) == {"succeeded"}, (states, killed)
        events = [e["message"] for e in status_events(a, resumed_job)]
        assert any("resumed" in m for m in events), events  # continued from its checkpoint, on machine b
        assert get_db().one("SELECT worker_host FROM ft_jobs WHERE id=?", (resumed_job,))[0] == "machine-b"

        db = get_db()
        # only the workers ran anything: the servers (LADDER_SERVE_WORKER=0) started no training worker
        hosts = {r[0] for r in db.query("SELECT worker_host FROM ft_jobs UNION SELECT worker_host FROM tasks")}
        assert hosts <= {"machine-a", "machine-b"}, hosts
        # exactly once: one tuned model and one training usage row per fine-tune, one run per eval
        for job_id in submitted[:2]:
            assert db.one("SELECT COUNT(*) FROM models WHERE name LIKE ?", (f"ft:%:{job_id}",))[0] == 1
            assert db.one("SELECT COUNT(*) FROM usage WHERE kind='train' AND source=?", (job_id,))[0] == 1
        run_ids = [status(j, a)["run_id"] for j in submitted[2:5]]
        assert len(set(run_ids)) == 3
        assert db.one("SELECT COUNT(*) FROM eval_runs WHERE pipeline LIKE 'router%'")[0] == 3
        assert db.one("SELECT COUNT(*) FROM climbs")[0] == 1
        # both servers say the same about every job
        for j in submitted:
            sa, sb = status(j, a), status(j, b)
            assert (sa["status"], sa.get("run_id"), sa.get("fine_tuned_model")) == (
                sb["status"],
                sb.get("run_id"),
                sb.get("fine_tuned_model"),
            )
        print(f"killed worker a while it ran {killed}; all six succeeded once")
    finally:
        for p in workers.values():
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
                try:
                    p.wait(30)
                except subprocess.TimeoutExpired:
                    os.killpg(p.pid, signal.SIGKILL)
        for s in servers:
            s.stop()
        reset_dbs()
