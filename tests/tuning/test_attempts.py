"""Deaths are counted since the last new checkpoint; the `worker_died` message names the command that resumes."""

from __future__ import annotations

import shlex

from tests.tuning.conftest import queued_job as tuning_queued_job
from typer.testing import CliRunner

from ladder.cli.main import app
from ladder.server import keys
from ladder.store.db import get_db
from ladder.tuning import jobs, leases, service


def queued_job(project_id: str = "proj-default") -> jobs.Job:
    return tuning_queued_job(project_id, total_steps=40)


def die(job_id: str, *, checkpoint_step: int | None = None) -> str:
    """One attempt: claimed, maybe a checkpoint, then its worker vanishes; the status after reclaim."""
    assert leases.claim_next("w").id == job_id
    if checkpoint_step is not None:
        jobs.add_checkpoint(job_id, checkpoint_step, 0.0, "/nowhere", None, {})
    jobs.update(job_id, lease_expires_at=0.0, worker_host="elsewhere")
    leases.reclaim_stale()
    return jobs.load(job_id, None).status


def test_a_job_killed_often_but_moving_forward_is_never_failed():
    job = queued_job()
    for step in range(1, 2 * leases.MAX_ATTEMPTS + 1):  # twice as many deaths as MAX_ATTEMPTS
        assert die(job.id, checkpoint_step=step) == "queued"
    # a checkpoint seen again (listed once more after a crash) is not progress
    for _ in range(leases.MAX_ATTEMPTS - 1):
        assert die(job.id, checkpoint_step=1) == "queued"
    assert die(job.id) == "failed"
    failed = jobs.load(job.id, None)
    assert failed.error["code"] == "worker_died"
    assert f"died {leases.MAX_ATTEMPTS} times in a row without saving a new checkpoint" in failed.error["message"]
    assert f"`ladder jobs resume {job.id}`" in failed.error["message"]


def test_the_worker_died_message_names_a_command_that_works_in_another_project(monkeypatch):
    started = []
    monkeypatch.setattr(service, "ensure_worker", lambda: started.append(1))
    keys.project_by_name("acme", create=True)
    job = queued_job(keys.project_by_name("acme"))
    for _ in range(leases.MAX_ATTEMPTS):
        die(job.id)
    message = jobs.load(job.id, None).error["message"]
    command = message[message.index("`ladder ") + 1 : message.rindex("`")]
    assert command == f"ladder jobs resume {job.id} --project acme"

    runner = CliRunner()
    wrong = runner.invoke(app, ["jobs", "resume", job.id, "--detach"])  # the default project has no such job
    assert wrong.exit_code != 0 and "no fine-tuning job" in str(wrong.exception)
    res = runner.invoke(app, [*shlex.split(command)[1:], "--detach"])
    assert res.exit_code == 0, res.output
    assert jobs.load(job.id, None).status == "queued" and jobs.load(job.id, None).attempts == 0
    assert started == [1]


def test_a_stopped_worker_hands_its_job_back_without_using_an_attempt():
    job = queued_job()
    leases.claim_next("w")
    assert leases.release(job.id, "someone-else") is False  # not theirs to hand back
    assert leases.release(job.id, "w") is True
    back = jobs.load(job.id, None)
    assert back.status == "queued" and back.attempts == 0
    assert any("worker was stopped" in e.message for e in jobs.events(job.id))


def test_workers_claiming_together_take_each_job_once():
    import threading

    ids = {queued_job().id for _ in range(6)}
    claimed: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(4)

    def claimer(n: int) -> None:
        start.wait()
        while (job := leases.claim_next(f"w{n}")) is not None:
            with lock:
                claimed.append(job.id)

    threads = [threading.Thread(target=claimer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(claimed) == sorted(ids)  # every job once, none twice


def test_a_reclaim_leaves_a_job_whose_worker_renewed_after_it_looked():
    job = queued_job()
    assert leases.claim_next("w").id == job.id
    jobs.update(job.id, lease_expires_at=0.0, worker_host="elsewhere")
    db = get_db()
    [seen] = leases.FT_JOBS.stale(db, "id")
    assert leases.renew_lease(job.id, "w") == (True, False)  # the worker was only slow
    with db.tx() as conn:
        assert not leases.FT_JOBS.reset(conn, seen, "queued")
    assert jobs.load(job.id, None).status == "running"
    assert leases.reclaim_stale() == []
