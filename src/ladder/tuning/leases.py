"""Fine-tuning jobs' leases: a running job belongs to one live worker; jobs of dead workers go back to the queue.

The mechanics are `ladder.store.leases`, the same as every queued task's; what is particular to a
fine-tune is here: attempts count since its last new checkpoint, and each change is a job event.
"""

from __future__ import annotations

import os

from ladder.store.db import Database, get_db
from ladder.store.leases import LeaseTable
from ladder.tuning import checkpoints
from ladder.tuning.jobs import Job, add_event, fail, finish, load, resume_command

# A job whose worker dies this many times in a row without saving a new checkpoint is failed
# (a worker killed by the kernel for memory would otherwise be restarted forever). `attempts`
# counts since the last new checkpoint (jobs.add_checkpoint resets it), so a job that is
# killed often but moves forward each time still finishes.
MAX_ATTEMPTS = 3
FT_JOBS = LeaseTable("ft_jobs")


def lease_seconds() -> float:
    return float(os.environ.get("LADDER_TUNING_LEASE_S", "20"))


def reclaim_stale(db: Database | None = None) -> list[str]:
    """Running jobs whose worker is gone go back to the queue (or fail after MAX_ATTEMPTS)."""
    from ladder.tuning.service import job_dir

    db = db or get_db()
    reclaimed, ended = [], []
    for r in FT_JOBS.stale(db, "id, project_id"):
        with db.tx() as conn:
            if not FT_JOBS.reset(conn, r, "queued"):
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
    row = FT_JOBS.claim(db, worker_id, lease_seconds())
    return load(row["id"], None, db) if row is not None else None


def renew_lease(job_id: str, worker_id: str, db: Database | None = None) -> tuple[bool, bool]:
    """(still ours, cancel requested)."""
    lease = FT_JOBS.renew(db or get_db(), job_id, worker_id, lease_seconds())
    return lease.ours, lease.cancel_requested


def release(job_id: str, worker_id: str, db: Database | None = None) -> bool:
    """A worker asked to stop hands its job back to the queue (not counted as a failed attempt)."""
    db = db or get_db()
    with db.tx() as conn:
        released = FT_JOBS.release(conn, job_id, worker_id)
        if released:
            add_event(
                job_id,
                "The worker was stopped; the job is queued again and will resume from its last complete checkpoint.",
                db=db,
            )
    return released
