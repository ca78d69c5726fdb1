"""Queue workers running real eval and climb tasks on the tiny Llama: no task twice, kills, shutdowns, climbs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from ladder.queue import climbs, store
from ladder.queue.worker import QueueWorker
from ladder.store.db import DEFAULT_PROJECT, get_db
from tests.queue.helpers import make_bot, queue_eval, upload_test, wait_for

ROOT = Path(__file__).resolve().parents[2]


def _eval_runs() -> list[str]:
    return [r["id"] for r in get_db().query("SELECT id FROM eval_runs")]


def test_two_workers_never_run_the_same_task(engine):
    bot = make_bot("tiny-llama")
    tasks = [queue_eval(bot, 4) for _ in range(6)]
    workers = [QueueWorker(("eval",), interval_s=0.05).start() for _ in range(2)]
    try:
        wait_for(lambda: all(store.get(t.id).done for t in tasks), what="all six evals")
    finally:
        for w in workers:
            w.stop()
    done = [store.get(t.id) for t in tasks]
    assert {t.status for t in done} == {"succeeded"}, [t.error for t in done]
    assert all(t.attempts == 1 for t in done)  # each started once
    run_ids = [t.run_id for t in done]
    assert len(set(run_ids)) == 6 and sorted(_eval_runs()) == sorted(run_ids)  # one stored run per task
    ran = [task_id for w in workers for task_id in w.finished]
    assert sorted(ran) == sorted(t.id for t in tasks)  # and no task in both workers' books


def _worker_process(*args: str) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "LADDER_THREADS": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "ladder.cli.main", "worker", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def test_a_killed_workers_task_runs_again_and_finishes_once(tiny_model, ladder_home):
    from ladder.store.scratch import remove_abandoned, scratch_root

    task = queue_eval(make_bot(tiny_model), 40)
    proc = _worker_process("--kinds", "eval", "--interval", "0.1")
    try:
        # Claimed, and its scratch copy made (the claim comes first: a kill between the two leaves no copy).
        wait_for(
            lambda: store.get(task.id).status == "running" and any(scratch_root().glob("eval-*")),
            timeout=120,
            every=0.01,
            what="the claim and its scratch copy",
        )
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    killed = store.get(task.id)
    assert killed.status == "running" and killed.worker_pid == proc.pid and killed.attempts == 1
    assert store.reclaim_stale() == [task.id]  # its pid is dead on this host: no need to wait out the lease
    assert store.get(task.id).status == "queued"
    (copy,) = scratch_root().iterdir()  # the killed worker's scratch copy of the test file ...
    old = time.time() - 120
    os.utime(copy, (old, old))
    assert copy.name.startswith("eval-") and remove_abandoned() == [copy]  # ... its lock gone with it

    assert QueueWorker(("eval",)).run_one().id == task.id
    done = store.get(task.id)
    assert done.status == "succeeded" and done.attempts == 2
    assert _eval_runs() == [done.run_id]  # the killed attempt stored nothing
    assert done.progress == {"done": 40, "total": 40}


def test_a_worker_stopped_mid_task_hands_it_back_uncounted(tiny_model, monkeypatch):
    from ladder.pipelines import service

    monkeypatch.setenv("LADDER_QUEUE_HEARTBEAT_S", "0.1")
    service.create_bot("talker", {"model": tiny_model, "max_tokens": 48})
    task = queue_eval("talker", 96)
    worker = QueueWorker(("eval",), interval_s=0.05).start()
    try:
        wait_for(lambda: (store.get(task.id).progress or {}).get("done"), what="a first batch")
    finally:
        worker.stop()
    back = store.get(task.id)
    assert worker.finished == {task.id: "released"}
    assert back.status == "queued" and back.attempts == 0 and back.worker_id is None
    assert 0 < back.progress["done"] < 96  # it stopped between items, not at the end
    assert _eval_runs() == []
    assert QueueWorker(("eval",)).run_one().id == task.id
    assert store.get(task.id).status == "succeeded" and len(_eval_runs()) == 1


def test_a_climb_task_stores_its_runs_and_the_climb_together(tiny_model):
    train = b"".join(
        b'{"input": "message %d about %s", "output": "%s"}\n'
        % (i, b"bills" if i % 2 else b"parcels", b"billing" if i % 2 else b"shipping")
        for i in range(12)
    )
    from ladder.store import files

    params = climbs.ClimbParams(
        files.upload(train, "train.jsonl", "eval").id,
        upload_test(4),
        model=tiny_model,
        target="accuracy=0",
        tune=False,
    )
    task = store.enqueue("climb", DEFAULT_PROJECT, climbs.prepare(params, DEFAULT_PROJECT).as_dict())
    QueueWorker(("climb",)).run_one()
    done = store.get(task.id)
    assert done.status == "succeeded", done.error
    row = get_db().one("SELECT summary FROM climbs WHERE id=?", (done.run_id,))
    rungs = json.loads(row["summary"])["rungs"]
    assert [r["name"] for r in rungs] == ["prompt"]  # the target is met at once
    assert _eval_runs() == [rungs[0]["run"]]
    (rung,) = done.progress["rungs"]  # the climb's progress lists its rung tasks
    assert rung["name"] == "prompt" and rung["status"] == "succeeded" and rung["done"] == rung["total"] == 4


def test_ladder_worker_refuses_an_unknown_kind():
    from typer.testing import CliRunner

    from ladder.cli.main import app
    from ladder.errors import InvalidInput

    res = CliRunner().invoke(app, ["worker", "--kinds", "eval,train", "--idle-exit", "0"])
    assert isinstance(res.exception, InvalidInput) and "--kinds" in res.exception.message


def test_ladder_worker_runs_eval_tasks_and_exits_when_idle(tiny_model):
    task = queue_eval(make_bot(tiny_model), 4)
    t0 = time.monotonic()
    proc = _worker_process("--kinds", "eval", "--idle-exit", "1", "--interval", "0.1")
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err.decode()[-2000:]
    assert store.get(task.id).status == "succeeded"
    assert time.monotonic() - t0 < 60
    assert get_db().one("SELECT COUNT(*) AS n FROM ft_worker")["n"] == 0  # no tune kind: no training worker
