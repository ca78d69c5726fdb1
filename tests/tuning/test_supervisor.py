"""The supervisor: starts a worker for queued jobs, reaps dead ones, backs off a crash loop, resumes after a restart.

A stand-in worker command (a sleeping Python) keeps these fast; the reliability suite runs real workers.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from tests.tuning.conftest import children_of, queued_job

from ladder.store.db import get_db
from ladder.tuning import jobs, leases, service, worker_ctl
from ladder.tuning.supervisor import Backoff, Supervisor

SLEEPER = [sys.executable, "-c", "import time; time.sleep(60)"]
CRASHER = [sys.executable, "-c", "raise SystemExit(3)"]


def wait_until(cond, timeout: float = 10.0) -> None:
    t0 = time.monotonic()
    while not cond():
        assert time.monotonic() - t0 < timeout, "timed out"
        time.sleep(0.02)


@pytest.fixture
def sup():
    s = Supervisor(command=SLEEPER, backoff=Backoff(first_s=0.2), stop_grace_s=2)
    yield s
    s.stop()


def test_a_queued_job_gets_one_worker_and_a_killed_one_is_reaped_and_replaced(sup):
    sup.tick()
    assert sup.spawned == 0  # nothing queued: nothing started
    queued_job()
    sup.tick()
    sup.tick()
    assert sup.spawned == 1 and len(sup.children) == 1  # one worker at a time
    pid = sup.children[0].proc.pid
    assert worker_ctl.worker_alive()

    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: children_of(os.getpid()).get(pid) == "Z")  # dead, not reaped yet
    assert not worker_ctl.worker_alive()  # a zombie is not a live worker
    sup.tick()
    assert pid not in children_of(os.getpid())  # reaped: no zombie left under us
    assert sup.failures == 1  # it died before training a step
    wait_until(lambda: (sup.tick(), sup.spawned == 2)[1], timeout=5)  # replaced after the back-off
    assert sup.children[0].proc.pid != pid


def test_a_crash_loop_backs_off_instead_of_spinning():
    sup = Supervisor(command=CRASHER, backoff=Backoff(first_s=30))
    queued_job()
    sup.tick()
    assert sup.spawned == 1
    wait_until(lambda: sup.children[0].proc.poll() is not None)
    for _ in range(5):
        sup.tick()
    assert sup.spawned == 1 and sup.failures == 1  # waiting out the pause, not starting again
    assert [Backoff(0.5, 4).delay(n) for n in range(6)] == [0, 0.5, 1, 2, 4, 4]
    sup.stop()


def test_a_fresh_supervisor_resumes_what_a_crash_left(sup, tmp_path):
    # the state a killed server and worker leave: a job still `running` under a dead pid,
    # a queued one, and half-written checkpoints
    stranded, waiting = queued_job(), queued_job()
    leases.claim_next("dead-worker")
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    jobs.update(stranded.id, worker_pid=gone.pid)
    partials = []
    for job in (stranded, waiting):
        p = service.job_dir(job.id) / "checkpoints" / ".tmp-step-0000002-abc"
        p.mkdir(parents=True)
        (p / "adapter_model.safetensors").write_bytes(b"half")
        partials.append(p)
    assert jobs.load(stranded.id, None).status == "running"

    sup.tick()  # the start-up pass
    assert jobs.load(stranded.id, None).status == "queued"
    assert not any(p.exists() for p in partials)
    assert sup.spawned == 1


def test_a_running_job_with_a_live_worker_is_left_alone(sup):
    job = queued_job()
    leases.claim_next("live-worker")  # this process holds the lease and is alive
    partial = service.job_dir(job.id) / "checkpoints" / ".tmp-step-0000004-abc"
    partial.mkdir(parents=True)
    sup.tick()
    assert jobs.load(job.id, None).status == "running" and partial.exists()  # its work in progress
    assert sup.spawned == 0


def test_stop_asks_its_workers_to_stop_and_reaps_them():
    sup = Supervisor(command=SLEEPER, stop_grace_s=5)
    queued_job()
    sup.start()
    wait_until(lambda: sup.spawned == 1)
    pid = sup.children[0].proc.pid
    sup.stop()
    assert sup._thread is not None and not sup._thread.is_alive()
    assert pid not in children_of(os.getpid())


def test_the_server_lifespan_runs_a_supervisor_and_stops_it():
    from fastapi.testclient import TestClient

    from ladder.server.app import create_app
    from ladder.server.run import tuning_supervised

    app = create_app(lifespan=tuning_supervised)
    with TestClient(app) as client:
        sup = app.state.tuning_supervisor
        assert isinstance(sup, Supervisor) and sup._thread.is_alive()
        assert client.get("/api/health").status_code == 200
    assert app.state.tuning_supervisor is None and not sup._thread.is_alive()


def test_ladder_worker_exits_when_idle():
    from typer.testing import CliRunner

    from ladder.cli.main import app

    t0 = time.monotonic()
    res = CliRunner().invoke(app, ["worker", "--idle-exit", "0.3", "--interval", "0.05"])
    assert res.exit_code == 0, res.output
    assert time.monotonic() - t0 < 10
    assert get_db().one("SELECT COUNT(*) AS n FROM ft_worker")["n"] == 0  # it started nothing


def test_a_worker_started_without_a_supervisor_is_reaped_too():
    # what a server without the lifespan (or a long `jobs show --follow`) does: it must not keep a zombie
    pid = worker_ctl.ensure_worker()
    assert pid is not None and pid in children_of(os.getpid())
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: pid not in children_of(os.getpid()), timeout=5)
