"""Leases on rows of long work: the one mechanism behind queued tasks (`tasks`) and fine-tunes (`ft_jobs`).

A running row belongs to the worker whose id it carries while that worker renews its lease. Each
table has the same lease columns (status, worker_id, worker_host, worker_pid, lease_expires_at,
attempts, started_at, cancel_requested), and every transition names the worker, or the lease it saw,
in its WHERE clause: a worker that lost its row changes nothing, and two reclaimers reset it once.

Claims lock the row with FOR UPDATE SKIP LOCKED on PostgreSQL, outside the global write lock, so
workers on many machines claim at the same time, each a different row; on SQLite the same statement
runs inside BEGIN IMMEDIATE (one writer at a time does the same). No queue library fits here: the
ones for PostgreSQL (procrastinate, pgqueuer) do not run on SQLite, the embedded default, and
neither keeps the result write and the final status in one transaction of the caller's.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from ladder.settings import host_name
from ladder.store.db import Database


@dataclass(frozen=True)
class Lease:
    """What a renewal found: whether the row is still the worker's, and whether a cancel was asked."""

    ours: bool
    cancel_requested: bool


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


@dataclass(frozen=True)
class LeaseTable:
    """The lease operations on one table of work; `where`/`args` narrow which queued rows a claim takes."""

    table: str

    def claim(
        self, db: Database, worker_id: str, lease_s: float, *, where: str = "", args: tuple = (), also_set: str = ""
    ):
        """Take the oldest queued row (attempts counted) for this worker; the claimed row, or None."""
        queued = f"status='queued'{' AND ' + where if where else ''}"
        if db.one(f"SELECT 1 FROM {self.table} WHERE {queued} LIMIT 1", args) is None:
            return None  # idle workers poll with a read, never a write lock
        pg = db.engine == "postgresql"
        now = time.time()
        sql = (
            f"UPDATE {self.table} SET status='running', worker_id=?, worker_host=?, worker_pid=?,"
            f" lease_expires_at=?, attempts=attempts+1, started_at=COALESCE(started_at, ?){also_set}"
            f" WHERE id = (SELECT id FROM {self.table} WHERE {queued} ORDER BY created_at, id LIMIT 1"
            + (" FOR UPDATE SKIP LOCKED" if pg else "")
            + ") RETURNING *"
        )
        with db.tx(exclusive=not pg) as conn:
            return conn.execute(sql, (worker_id, host_name(), os.getpid(), now + lease_s, now, *args)).fetchone()

    def renew(
        self, db: Database, row_id: str, worker_id: str, lease_s: float, *, also_set: str = "", args: tuple = ()
    ) -> Lease:
        """Extend the lease (and set `also_set` with `args`) while the row is still this worker's."""
        with db.tx() as conn:
            row = conn.execute(
                f"UPDATE {self.table} SET lease_expires_at=?{also_set}"
                " WHERE id=? AND worker_id=? AND status='running' RETURNING cancel_requested",
                (time.time() + lease_s, *args, row_id, worker_id),
            ).fetchone()
        return Lease(row is not None, bool(row and row["cancel_requested"]))

    def release(self, conn, row_id: str, worker_id: str) -> bool:
        """A worker asked to stop hands its row back to the queue (not counted as an attempt)."""
        cur = conn.execute(
            f"UPDATE {self.table} SET status='queued', worker_id=NULL, worker_host=NULL, worker_pid=NULL,"
            " lease_expires_at=NULL, attempts=CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END"
            " WHERE id=? AND worker_id=? AND status='running'",
            (row_id, worker_id),
        )
        return cur.rowcount == 1

    def stale(self, db: Database, columns: str = "id") -> list:
        """Running rows whose worker is gone: its lease expired, or its pid is dead on this host."""
        now = time.time()
        rows = db.query(
            f"SELECT {columns}, worker_id, worker_pid, worker_host, lease_expires_at, attempts, cancel_requested"
            f" FROM {self.table} WHERE status='running'"
        )
        return [r for r in rows if (r["lease_expires_at"] or 0) < now or pid_dead(r["worker_pid"], r["worker_host"])]

    def reset(self, conn, stale_row, status: str, *, also_set: str = "", args: tuple = ()) -> bool:
        """Take a stale row from its gone worker (to `status`), unless that worker renewed meanwhile."""
        guards, guard_args = [], []
        for column in ("worker_id", "lease_expires_at"):  # what the reclaimer saw, NULL included
            if stale_row[column] is None:
                guards.append(f"{column} IS NULL")
            else:
                guards.append(f"{column}=?")
                guard_args.append(stale_row[column])
        cur = conn.execute(
            f"UPDATE {self.table} SET status=?, worker_id=NULL, worker_host=NULL, worker_pid=NULL,"
            f" lease_expires_at=NULL{also_set} WHERE id=? AND status='running' AND " + " AND ".join(guards),
            (status, *args, stale_row["id"], *guard_args),
        )
        return cur.rowcount == 1
