"""The tuning-worker slot of this machine (one per host): who holds it, whether it is alive, starting one."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

from ladder.settings import get_settings, host_name
from ladder.store.db import Database, get_db
from ladder.store.leases import pid_dead
from ladder.tuning import leases

STARTING = "starting-"  # worker_id of the slot while a spawned worker has not taken it yet


# The slot row is replaced whole (an upsert both engines accept).
_REPLACE_WORKER = (
    " ON CONFLICT (host) DO UPDATE SET worker_id=excluded.worker_id, pid=excluded.pid,"
    " heartbeat_at=excluded.heartbeat_at"
)


def _alive(row) -> bool:
    if row is None:
        return False
    if pid_dead(row["pid"], row["host"]):
        return False
    return time.time() - row["heartbeat_at"] < leases.lease_seconds()


def worker_alive(db: Database | None = None) -> bool:
    return _alive((db or get_db()).one("SELECT * FROM ft_worker WHERE host=?", (host_name(),)))


def acquire_slot(worker_id: str, db: Database | None = None) -> bool:
    """Take this machine's worker slot unless a live worker holds it."""
    db = db or get_db()
    with db.tx() as conn:
        row = conn.execute("SELECT * FROM ft_worker WHERE host=?", (host_name(),)).fetchone()
        # A row with our pid was written by whoever spawned us (ensure_worker): ours to take.
        if _alive(row) and row["worker_id"] != worker_id and row["pid"] != os.getpid():
            return False
        conn.execute(
            "INSERT INTO ft_worker(host, worker_id, pid, heartbeat_at) VALUES (?,?,?,?)" + _REPLACE_WORKER,
            (host_name(), worker_id, os.getpid(), time.time()),
        )
    return True


def heartbeat(worker_id: str, db: Database | None = None) -> bool:
    cur = (db or get_db()).execute(
        "UPDATE ft_worker SET heartbeat_at=? WHERE host=? AND worker_id=?", (time.time(), host_name(), worker_id)
    )
    return cur.rowcount == 1


def release_if_idle(worker_id: str, db: Database | None = None) -> bool:
    """Give the slot up when nothing is queued (checked in the same transaction, so a job queued
    just now is either seen here or finds no worker and starts one)."""
    db = db or get_db()
    with db.tx() as conn:
        if conn.execute("SELECT 1 FROM ft_jobs WHERE status='queued' LIMIT 1").fetchone():
            return False
        conn.execute("DELETE FROM ft_worker WHERE host=? AND worker_id=?", (host_name(), worker_id))
    return True


def release_slot(worker_id: str, db: Database | None = None) -> None:
    """Give the slot up at once (a worker told to stop), so the next one need not wait for the lease."""
    (db or get_db()).execute("DELETE FROM ft_worker WHERE host=? AND worker_id=?", (host_name(), worker_id))


def worker_command() -> list[str]:
    """The command line of one tuning worker process."""
    return [sys.executable, "-m", "ladder.tuning.worker"]


def spawn_worker(command: list[str] | None = None, db: Database | None = None) -> subprocess.Popen | None:
    """Start a worker process unless one is alive; the caller owns the child and must reap it."""
    db = db or get_db()
    home = get_settings().home
    log_dir = home / "tuning"
    log_dir.mkdir(parents=True, exist_ok=True)
    with db.tx() as conn:
        if worker_alive(db):
            return None
        with open(log_dir / "worker.log", "ab") as log:
            proc = subprocess.Popen(
                command or worker_command(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                # its own session: a Ctrl-C meant for the terminal does not reach a training job
                start_new_session=True,
                env={**os.environ, "LADDER_HOME": str(home)},
            )
        # Hold the slot for the child until it starts beating, so a second caller does not spawn another.
        conn.execute(
            "INSERT INTO ft_worker(host, worker_id, pid, heartbeat_at) VALUES (?,?,?,?)" + _REPLACE_WORKER,
            (host_name(), f"{STARTING}{proc.pid}", proc.pid, time.time()),
        )
    return proc


def ensure_worker() -> int | None:
    """Start a worker process if none is alive; returns the new process id (None if one was running).

    For callers without a supervisor (a CLI command, a test server): a thread of this process
    waits for the child, so a worker that dies is reaped at once instead of staying a zombie.
    """
    leases.reclaim_stale()
    proc = spawn_worker()
    if proc is None:
        return None
    threading.Thread(target=proc.wait, name=f"reap-tuning-worker-{proc.pid}", daemon=True).start()
    return proc.pid
