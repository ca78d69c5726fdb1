"""All the SQL of the `tasks` table: enqueue, claim under a lease, renew, finish, cancel, reclaim.

The lease mechanics (claim, renew, release, reclaim) are `ladder.store.leases`, shared with the
fine-tuning jobs: a running task belongs to the worker whose id it carries while that worker renews
its lease; a task whose worker is gone (lease expired, or a dead pid on this host) goes back to the
queue, and fails after MAX_ATTEMPTS starts. The result is written once: `complete` sets `succeeded`
and writes the result rows in one transaction, only while the row is still the caller's.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ladder.errors import Conflict, NotFound
from ladder.ids import new_id
from ladder.queue.config import QueueConfig
from ladder.store.db import Database, get_db
from ladder.store.leases import Lease, LeaseTable

# A task whose worker dies this many times is failed rather than started again (an eval that gets
# its worker killed for memory would otherwise be retried forever). Claims count the starts.
MAX_ATTEMPTS = 3
STATUSES = ("queued", "running", "succeeded", "failed", "cancelled")
DONE = ("succeeded", "failed", "cancelled")
TASKS = LeaseTable("tasks")


class LeaseLost(Exception):
    """The task is no longer this worker's (its lease expired and it was reclaimed, or it was cancelled)."""


@dataclass
class Task:
    id: str
    project_id: str
    kind: str
    status: str
    params: dict
    run_id: str | None
    error: dict | None
    progress: dict | None
    cancel_requested: bool
    worker_id: str | None
    worker_host: str | None
    worker_pid: int | None
    lease_expires_at: float | None
    attempts: int
    created_at: float
    started_at: float | None
    finished_at: float | None
    parent_id: str | None = None  # a climb's rung names its climb
    result: dict | None = None  # what a finished rung hands its climb (ladder.queue.rungs)

    @property
    def done(self) -> bool:
        return self.status in DONE

    @classmethod
    def from_row(cls, row) -> Task:
        def js(v):
            return json.loads(v) if v else None

        return cls(
            id=row["id"],
            project_id=row["project_id"],
            kind=row["kind"],
            status=row["status"],
            params=js(row["params"]) or {},
            run_id=row["run_id"],
            error=js(row["error"]),
            progress=js(row["progress"]),
            cancel_requested=bool(row["cancel_requested"]),
            worker_id=row["worker_id"],
            worker_host=row["worker_host"],
            worker_pid=row["worker_pid"],
            lease_expires_at=row["lease_expires_at"],
            attempts=row["attempts"],
            created_at=row["created_at"],
            started_at=row["started_at"],
            finished_at=row["finished_at"],
            parent_id=row["parent_id"],
            result=js(row["result"]),
        )


def lease_seconds() -> float:
    return QueueConfig().lease_s


def _json(value: dict | None) -> str | None:
    return json.dumps(value) if value else None


def _in(values: Sequence[str]) -> str:
    return "(" + ",".join("?" * len(values)) + ")"


def enqueue(kind: str, project_id: str, params: dict, db: Database | None = None) -> Task:
    """A new queued task (`eval-…`, `climb-…`); its inputs are in `params`, by id, never by path."""
    db = db or get_db()
    task_id = new_id(kind)
    db.execute(
        "INSERT INTO tasks(id, project_id, kind, status, params, created_at) VALUES (?,?,?,?,?,?)",
        (task_id, project_id, kind, "queued", json.dumps(params), time.time()),
    )
    return get(task_id, db=db)


def get(task_id: str, project_id: str | None = None, kind: str | None = None, db: Database | None = None) -> Task:
    """The task (of this project and kind when given), or NotFound naming the id."""
    row = (db or get_db()).one("SELECT * FROM tasks WHERE id=?", (task_id,))
    if row is None or (project_id and row["project_id"] != project_id) or (kind and row["kind"] != kind):
        raise NotFound(f"no task {task_id[:100]!r}", param="id")
    return Task.from_row(row)


def list_tasks(project_id: str, kind: str, limit: int = 50, db: Database | None = None) -> list[Task]:
    """The project's tasks of one kind, newest first."""
    rows = (db or get_db()).query(
        "SELECT * FROM tasks WHERE project_id=? AND kind=? ORDER BY created_at DESC, id LIMIT ?",
        (project_id, kind, limit),
    )
    return [Task.from_row(r) for r in rows]


def claim_next(worker_id: str, kinds: Sequence[str], db: Database | None = None) -> Task | None:
    """Take the oldest queued task of `kinds` for this worker (attempts counted), or None."""
    row = TASKS.claim(
        db or get_db(),
        worker_id,
        lease_seconds(),
        where="kind IN " + _in(kinds),
        args=tuple(kinds),
        also_set=", progress=NULL",
    )
    return Task.from_row(row) if row is not None else None


def renew(task_id: str, worker_id: str, progress: dict | None = None, db: Database | None = None) -> Lease:
    """Extend the lease (and record progress) while the task is still this worker's."""
    return TASKS.renew(
        db or get_db(),
        task_id,
        worker_id,
        lease_seconds(),
        also_set=", progress=COALESCE(?, progress)",
        args=(_json(progress),),
    )


def cancel_requested(task_id: str, db: Database | None = None) -> bool:
    row = (db or get_db()).one("SELECT cancel_requested FROM tasks WHERE id=?", (task_id,))
    return bool(row and row["cancel_requested"])


def complete(
    task_id: str,
    worker_id: str,
    run_id: str,
    save: Callable[[], None],
    progress: dict | None = None,
    db: Database | None = None,
) -> str:
    """Record success and write the result (`save`) in one transaction, only while the task is ours.

    A cancel asked for meanwhile wins: the task ends `cancelled` and nothing is saved. Returns the
    final status; raises LeaseLost (nothing written) when another worker owns the task now.
    """
    db = db or get_db()
    with db.tx() as conn:
        row = conn.execute(
            "UPDATE tasks SET status=CASE WHEN cancel_requested=1 THEN 'cancelled' ELSE 'succeeded' END,"
            " run_id=CASE WHEN cancel_requested=1 THEN NULL ELSE ? END, finished_at=?, lease_expires_at=NULL,"
            " progress=COALESCE(?, progress) WHERE id=? AND worker_id=? AND status='running' RETURNING status",
            (run_id, time.time(), _json(progress), task_id, worker_id),
        ).fetchone()
        if row is None:
            raise LeaseLost(task_id)
        if row["status"] == "succeeded":
            save()  # joins this transaction: the result rows commit with the status, or neither does
        return row["status"]


def end(
    task_id: str,
    worker_id: str,
    status: str,
    error: dict | None = None,
    progress: dict | None = None,
    db: Database | None = None,
) -> bool:
    """End a running task of this worker as `failed` (error: {code, message}) or `cancelled`."""
    if status not in ("failed", "cancelled"):
        raise ValueError(f"a task ends failed or cancelled here, not {status!r}")
    cur = (db or get_db()).execute(
        "UPDATE tasks SET status=?, error=?, finished_at=?, lease_expires_at=NULL, progress=COALESCE(?, progress)"
        " WHERE id=? AND worker_id=? AND status='running'",
        (status, _json(error), time.time(), _json(progress), task_id, worker_id),
    )
    return cur.rowcount == 1


def release(task_id: str, worker_id: str, db: Database | None = None) -> bool:
    """A worker asked to stop hands its task back to the queue (not counted as an attempt)."""
    with (db or get_db()).tx() as conn:
        return TASKS.release(conn, task_id, worker_id)


def request_cancel(task_id: str, project_id: str, kind: str, db: Database | None = None) -> Task:
    """Cancel: a queued task ends at once; a running one is flagged and its worker stops at the next item."""
    db = db or get_db()
    task = get(task_id, project_id, kind, db)
    with db.tx() as conn:
        row = conn.execute(
            "UPDATE tasks SET cancel_requested=1,"
            " status=CASE WHEN status='queued' THEN 'cancelled' ELSE status END,"
            " finished_at=CASE WHEN status='queued' THEN ? ELSE finished_at END"
            " WHERE id=? AND status IN ('queued','running') RETURNING id",
            (time.time(), task.id),
        ).fetchone()
        if row is not None:
            _cancel_children(conn, task.id)  # a climb's rungs end with it, in the same transaction
    if row is None:
        current = get(task_id, db=db)
        raise Conflict(f"{kind} {task_id} already {current.status}; nothing to cancel", param="id")
    return get(task_id, db=db)


def pending(kinds: Sequence[str], db: Database | None = None) -> bool:
    """Whether a task of these kinds is queued or running anywhere."""
    return (db or get_db()).one(
        "SELECT 1 FROM tasks WHERE status IN ('queued','running') AND kind IN " + _in(kinds) + " LIMIT 1",
        tuple(kinds),
    ) is not None


def reclaim_stale(db: Database | None = None) -> list[str]:
    """Running tasks whose worker is gone go back to the queue (cancelled if asked; failed after MAX_ATTEMPTS)."""
    db = db or get_db()
    reclaimed = []
    for r in TASKS.stale(db, "id, kind"):
        if r["cancel_requested"]:
            status, error = "cancelled", None
        elif r["attempts"] >= MAX_ATTEMPTS:
            status = "failed"
            error = {
                "code": "worker_died",
                "message": f"the worker running this {r['kind']} stopped {r['attempts']} times before it"
                " finished (killed, out of memory, or its machine went away), so it is not started again;"
                f" free memory (or run `ladder worker` with fewer slots) and start a new {r['kind']}",
            }
        else:
            status, error = "queued", None
        finished = time.time() if status != "queued" else None
        with db.tx() as conn:
            if TASKS.reset(conn, r, status, also_set=", error=?, finished_at=?", args=(_json(error), finished)):
                reclaimed.append(r["id"])
    return reclaimed


# -- a task's children (a climb's rungs, ladder.queue.rungs) -----------------------------------------


def _cancel_children(conn, parent_id: str) -> None:
    """Queued children end `cancelled` at once; running ones are flagged and their workers stop them."""
    conn.execute(
        "UPDATE tasks SET cancel_requested=1,"
        " status=CASE WHEN status='queued' THEN 'cancelled' ELSE status END,"
        " finished_at=CASE WHEN status='queued' THEN ? ELSE finished_at END"
        " WHERE parent_id=? AND status IN ('queued','running')",
        (time.time(), parent_id),
    )


def cancel_children(parent_id: str, db: Database | None = None) -> None:
    """Stop a parent's unfinished children (the parent failed: their results would be of no use)."""
    with (db or get_db()).tx() as conn:
        _cancel_children(conn, parent_id)


def children(parent_id: str, db: Database | None = None) -> list[Task]:
    """A task's children, oldest first."""
    rows = (db or get_db()).query("SELECT * FROM tasks WHERE parent_id=? ORDER BY created_at, id", (parent_id,))
    return [Task.from_row(r) for r in rows]


def enqueue_children(
    parent: Task, worker_id: str, kind: str, params: list[dict], key: str, db: Database | None = None
) -> list[Task]:
    """Queue the children in `params` that the parent has not yet (a child is known by `params[key]`).

    Only while the parent is still `worker_id`'s: a parent that lost its lease to another worker adds
    nothing, and the check and the inserts are one write transaction, so a child is queued once
    however often its parent is run again.
    """
    db = db or get_db()
    added = []
    with db.tx() as conn:
        owner = conn.execute(
            "SELECT 1 FROM tasks WHERE id=? AND worker_id=? AND status='running'", (parent.id, worker_id)
        ).fetchone()
        if owner is None:
            raise LeaseLost(parent.id)
        have = {
            json.loads(r["params"]).get(key)
            for r in conn.execute("SELECT params FROM tasks WHERE parent_id=?", (parent.id,)).fetchall()
        }
        now = time.time()
        for i, p in enumerate(params):
            if p.get(key) in have:
                continue
            task_id = new_id(kind)
            conn.execute(
                "INSERT INTO tasks(id, project_id, kind, status, params, parent_id, created_at) VALUES (?,?,?,?,?,?,?)",
                (task_id, parent.project_id, kind, "queued", json.dumps(p), parent.id, now + i * 1e-6),
            )
            have.add(p.get(key))
            added.append(task_id)
    return [get(t, db=db) for t in added]


def set_result(task_id: str, result: dict, worker_id: str | None = None, db: Database | None = None) -> None:
    """Record a task's result: while it runs, only if it is still `worker_id`'s; without `worker_id`,
    from inside `complete`'s transaction (the `save` of an Outcome), which checked that already."""
    sql, args = "UPDATE tasks SET result=? WHERE id=?", [json.dumps(result, default=str), task_id]
    if worker_id is not None:
        sql += " AND worker_id=? AND status='running'"
        args.append(worker_id)
    if (db or get_db()).execute(sql, tuple(args)).rowcount != 1:
        raise LeaseLost(task_id)
