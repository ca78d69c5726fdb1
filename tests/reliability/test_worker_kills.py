"""kill -9 of the training worker at 8 points across 2 real jobs under a real `ladder serve`: both succeed unaided.

The server's supervisor is the only thing that restarts workers here. The worker pauses at named
points (ladder.tuning.pause_points, armed through LADDER_TUNING_PAUSE_DIR) so each kill lands at an
exact moment: right after a claim, a checkpoint renamed but not yet recorded, while loading data,
inside a checkpoint write (a half-written `.tmp-step-*` left behind), after an optimizer step, with
the final adapter saved but not registered, and inside the final registration transaction.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from ladder.store.db import get_db
from ladder.tuning import jobs, service
from tests.tuning.conftest import children_of, file_id, write_chat

ROOT = Path(__file__).resolve().parents[2]
HP = {
    "n_epochs": 2,
    "batch_size": 4,
    "micro_batch_size": 2,
    "lora_r": 4,
    "max_seq_length": 64,
    "checkpoint_every": 2,
    "warmup_ratio": 0.1,
}  # 12 examples: 3 steps an epoch, checkpoints at 2, 3, 4, 6
DEADLINE_S = 300


def kill_plan(a: str, b: str) -> list[tuple[str, dict]]:
    """(point, conditions) in the order they are reached. Job a is older, so it is claimed first.

    Between two deaths of a job without a new checkpoint there is at most one more, so the plan
    also proves that deaths with progress in between never add up to `worker_died`.
    """
    return [
        ("claimed", {"job": a}),
        ("checkpoint_renamed", {"job": a, "step": 2}),  # on disk, no row: the next attempt lists it
        ("loading_data", {"job": a}),
        ("checkpoint_writing", {"job": a, "step": 3}),  # leaves a .tmp-step-* directory
        ("after_step", {"job": a, "step": 4}),
        ("after_step", {"job": b, "step": 1}),
        ("adapter_saved", {"job": b}),
        ("registering", {"job": b}),  # the transaction dies uncommitted: nothing registered yet
    ]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def arm(pause_dir: Path, point: str, conditions: dict) -> None:
    tmp = pause_dir / f".{point}.arming"
    tmp.write_text(json.dumps(conditions))
    os.replace(tmp, pause_dir / f"{point}.armed")  # the worker never sees a half-written file


def wait_paused(pause_dir: Path, point: str, timeout: float) -> dict:
    path, t0 = pause_dir / f"{point}.paused", time.monotonic()
    while time.monotonic() - t0 < timeout:
        if path.exists():
            info = json.loads(path.read_text())
            path.unlink()
            return info
        time.sleep(0.02)
    raise TimeoutError(point)


def history(job_id: str) -> str:
    return "\n".join(f"  {e.level}: {e.message}" for e in jobs.events(job_id) if e.type != "metrics")


@pytest.mark.slow  # real training processes: about a minute and a half on 2 busy cores
def test_worker_killed_at_8_points_across_2_jobs(tiny_model, tmp_path, ladder_home):
    pause_dir = tmp_path / "pause"
    pause_dir.mkdir()
    data = write_chat(tmp_path / "train.jsonl", 12)
    a = service.create_job(file_id(data), model=tiny_model, suffix="a", hyperparameters=HP, seed=1)
    b = service.create_job(file_id(data), model=tiny_model, suffix="b", hyperparameters=HP, seed=2)
    plan = kill_plan(a.id, b.id)
    arm(pause_dir, *plan[0])

    port, log = free_port(), tmp_path / "server.log"
    env = {
        **os.environ,
        "LADDER_HOME": str(ladder_home),
        "LADDER_TUNING_LEASE_S": "5",
        "LADDER_TUNING_PAUSE_DIR": str(pause_dir),
        "LADDER_THREADS": "1",
        "OMP_NUM_THREADS": "1",
    }
    t0 = time.monotonic()
    with open(log, "ab") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "ladder.cli.main", "serve", "--port", str(port), "--log-level", "warning"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=out,
        )
    killed: list[int] = []
    try:
        for n, (point, conditions) in enumerate(plan):
            left = DEADLINE_S - (time.monotonic() - t0)
            try:
                info = wait_paused(pause_dir, point, left)
            except TimeoutError:
                pytest.fail(
                    f"kill {n + 1} ({point} {conditions}) never came; server log:\n"
                    f"{log.read_text()[-3000:]}\n{a.id}:\n{history(a.id)}\n{b.id}:\n{history(b.id)}"
                )
            assert children_of(server.pid).get(info["pid"]) is not None  # a worker of the server's supervisor
            if n + 1 < len(plan):
                arm(pause_dir, *plan[n + 1])  # before the kill: the next worker must not get past it first
            os.kill(info["pid"], signal.SIGKILL)
            killed.append(info["pid"])

        while not all(jobs.load(j.id, None).done for j in (a, b)):
            assert time.monotonic() - t0 < DEADLINE_S, f"{a.id}:\n{history(a.id)}\n{b.id}:\n{history(b.id)}"
            time.sleep(0.2)
        wall = time.monotonic() - t0
        assert httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=5).status_code == 200
        time.sleep(1.5)  # one supervisor pass reaps whatever died last
        zombies = [pid for pid, state in children_of(server.pid).items() if state == "Z"]
    finally:
        server.send_signal(signal.SIGTERM)  # a clean stop: the lifespan stops the supervisor and its worker
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()

    db = get_db()
    clean, failed = 0, []
    per_job = {}
    for j in (a, b):
        done = jobs.load(j.id, None)
        models = db.one(
            "SELECT COUNT(*) AS n FROM models WHERE json_extract(meta, '$.job')=? AND name NOT LIKE '%:ckpt-step-%'",
            (j.id,),
        )["n"]
        usage = db.one("SELECT COUNT(*) AS n FROM usage WHERE source=? AND kind='train'", (j.id,))["n"]
        d = service.job_dir(j.id)
        partial = [p.name for p in [*d.glob(".tmp-*"), *(d / "checkpoints").glob(".tmp-*")]]
        per_job[j.id] = models
        if done.status == "succeeded" and models == 1 and usage == 1 and not partial:
            clean += 1
        else:
            failed.append((j.id, done.status, done.error, models, usage, partial, history(j.id)))
    kills_clean = len(killed) if not failed else 0
    print(
        f"\nRELIABILITY worker-kill: tried={len(killed)} clean={kills_clean} failed={len(killed) - kills_clean}"
        f" (jobs succeeded={clean}/2, fine-tuned models per job={list(per_job.values())}, zombies={len(zombies)},"
        f" wall={wall:.0f}s)"
    )
    assert len(killed) == len(plan) == 8
    assert not failed, failed
    assert zombies == []
    # uvicorn re-raises the SIGTERM it handled once shutdown is done; the lifespan ran: no worker outlives it
    assert server.returncode in (0, -signal.SIGTERM), log.read_text()[-3000:]
    slot = db.one("SELECT pid FROM ft_worker")
    assert slot is None or not Path(f"/proc/{slot['pid']}").exists()
    for pid in killed:  # each killed worker is gone, not a zombie anywhere
        assert not Path(f"/proc/{pid}").exists() or "Z" not in Path(f"/proc/{pid}/stat").read_text().split()[2]
    deaths = sum("stopped unexpectedly" in e.message for j in (a, b) for e in jobs.events(j.id))
    assert deaths == 8  # every kill was noticed and the job requeued (none ended it)
