"""Leases: a running job belongs to one live worker; jobs of dead workers go back to the queue."""

from __future__ import annotations

import os
import time
from pathlib import Path

from ladder.settings import host_name
from ladder.store.db import Database, get_db
from ladder.tuning import checkpoints
from ladder.tuning.jobs import Job, add_event, fail, finish, load, resume_command

# A job whose worker dies this many times in a row without saving a new checkpoint is failed
# (a worker killed by the kernel for memory would otherwise be restarted forever). `attempts`
# counts since the last new checkpoint (jobs.add_checkpoint resets it), so a job that is
# killed often but moves forward each time still finishes.
MAX_ATTEMPTS = 3


def lease_seconds() -> float:
    return float(os.environ.get("LADDER_TUNING_LEASE_S", "20"))


def _zombie(pid: int) -> bool:
    """A process that has exited but was not reaped by its parent yet (Linux /proc; False elsewhere)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rfind(")") + 2 :].startswith(("Z", "X"))  # the state letter follows "(comm) "


def pid_dead(pid: int | None, host: str | None) -> bool:
    """True only when we can tell for sure: same host and no such process (or only its zombie)."""
    if not pid or host != host_name():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return _zombie(pid)


def reclaim_stale(db: Database | None = None) -> list[str]:
    """Running jobs whose worker is gone go back to the queue (or fail after MAX_ATTEMPTS)."""
    from ladder.tuning.service import job_dir

    db = db or get_db()
    now = time.time()
    reclaimed, ended = [], []
    for r in db.query(
        "SELECT id, project_id, worker_pid, worker_host, lease_expires_at, attempts, cancel_requested"
        " FROM ft_jobs WHERE status='running'"
    ):
        if not ((r["lease_expires_at"] or 0) < now or pid_dead(r["worker_pid"], r["worker_host"])):
            continue
        with db.tx() as conn:
            cur = conn.execute(
                "UPDATE ft_jobs SET status='queued', worker_id=NULL, worker_pid=NULL, lease_expires_at=NULL"
                " WHERE id=? AND status='running' AND (lease_expires_at IS NULL OR lease_expires_at=?)",
                (r["id"], r["lease_expires_at"]),
            )
            if cur.rowcount == 0:
                continue
            if r["cancel_requested"]:
                finish(r["id"], "cancelled", db=db)
                add_event(r["id"], "Job cancelled (its worker had stopped).", db=db)
                ended.append(r["id"])
            elif r["attempts"] >= MAX_ATTEMPTS:
                fail(
                    r["id"],
                    "worker_died",
                    f"the training worker died {r['attempts']} times in a row without saving a new"
                    " checkpoint (killed, or out of memory?). Free memory or create a new job with a"
                    " lower batch_size or max_seq_length; to continue this one from its last complete"
                    f" checkpoint, run `{resume_command(r['id'], r['project_id'], db)}`",
                    db=db,
                )
                ended.append(r["id"])
            else:
                add_event(
                    r["id"],
                    "The worker stopped unexpectedly; the job is queued again and will resume"
                    " from its last complete checkpoint.",
                    level="warn",
                    db=db,
                )
        reclaimed.append(r["id"])
    for job_id in ended:  # its worker is gone, so nobody is writing these
        checkpoints.remove_partial(job_dir(job_id))
    return reclaimed


def claim_next(worker_id: str, db: Database | None = None) -> Job | None:
    """Atomically take the oldest queued job for this worker."""
    db = db or get_db()
    with db.tx() as conn:
        row = conn.execute("SELECT id FROM ft_jobs WHERE status='queued' ORDER BY created_at LIMIT 1").fetchone()
        if row is None:
            return None
        now = time.time()
        conn.execute(
            "UPDATE ft_jobs SET status='running', worker_id=?, worker_pid=?, worker_host=?,"
            " lease_expires_at=?, attempts=attempts+1, started_at=COALESCE(started_at, ?) WHERE id=?",
            (worker_id, os.getpid(), host_name(), now + lease_seconds(), now, row["id"]),
        )
    return load(row["id"], None, db)


def renew_lease(job_id: str, worker_id: str, db: Database | None = None) -> tuple[bool, bool]:
    """(still ours, cancel requested)."""
    db = db or get_db()
    cur = db.execute(
        "UPDATE ft_jobs SET lease_expires_at=? WHERE id=? AND worker_id=? AND status='running'",
        (time.time() + lease_seconds(), job_id, worker_id),
    )
    row = db.one("SELECT cancel_requested FROM ft_jobs WHERE id=?", (job_id,))
    return cur.rowcount == 1, bool(row and row["cancel_requested"])


def release(job_id: str, worker_id: str, db: Database | None = None) -> bool:
    """A worker asked to stop hands its job back to the queue (not counted as a failed attempt)."""
    db = db or get_db()
    with db.tx() as conn:
        cur = conn.execute(
            "UPDATE ft_jobs SET status='queued', worker_id=NULL, worker_pid=NULL, lease_expires_at=NULL,"
            " attempts=CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END"
            " WHERE id=? AND worker_id=? AND status='running'",
            (job_id, worker_id),
        )
        if cur.rowcount:
            add_event(
                job_id,
                "The worker was stopped; the job is queued again and will resume from its last complete checkpoint.",
                db=db,
            )
    return cur.rowcount == 1
