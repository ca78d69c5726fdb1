"""Fine-tuning job rows, events and checkpoints in SQLite, with OpenAI-shaped views."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

from ladder.errors import Conflict, NotFound
from ladder.ids import new_id
from ladder.store.db import DEFAULT_PROJECT, Database, get_db

TERMINAL = ("succeeded", "failed", "cancelled")
STATUSES = ("validating_files", "queued", "running") + TERMINAL


@dataclass
class Job:
    id: str
    project_id: str
    model: str
    suffix: str | None
    status: str
    training_file: str
    validation_file: str | None
    hyperparameters: dict
    resolved: dict
    repro: dict
    seed: int
    fine_tuned_model: str | None
    trained_tokens: int | None
    error: dict | None
    cancel_requested: bool
    attempts: int
    created_at: float
    started_at: float | None
    finished_at: float | None
    estimated_finish: float | None
    worker_pid: int | None = None

    @property
    def done(self) -> bool:
        return self.status in TERMINAL

    def as_openai(self) -> dict:
        hp = self.resolved or self.hyperparameters
        shown = {k: hp.get(k, "auto") for k in ("n_epochs", "batch_size", "learning_rate_multiplier")}
        return {
            "object": "fine_tuning.job",
            "id": self.id,
            "model": self.model,
            "created_at": int(self.created_at),
            "finished_at": int(self.finished_at) if self.finished_at else None,
            "fine_tuned_model": self.fine_tuned_model,
            "organization_id": self.project_id,
            "result_files": [],
            "status": self.status,
            "validation_file": self.validation_file,
            "training_file": self.training_file,
            "hyperparameters": shown,
            "trained_tokens": self.trained_tokens,
            "error": self.error,
            "seed": self.seed,
            "estimated_finish": int(self.estimated_finish) if self.estimated_finish else None,
            "integrations": [],
            "user_provided_suffix": self.suffix,
            "method": {"type": "supervised", "supervised": {"hyperparameters": shown}},
            "metadata": {"ladder_hyperparameters": self.resolved, "reproducibility": self.repro},
        }


@dataclass
class Event:
    id: str
    job_id: str
    level: str
    type: str
    message: str
    data: dict | None
    created_at: float
    seq: int = 0

    def as_openai(self) -> dict:
        return {
            "object": "fine_tuning.job.event",
            "id": self.id,
            "created_at": int(self.created_at),
            "level": self.level,
            "message": self.message,
            "data": self.data or {},
            "type": self.type,
        }


@dataclass
class Checkpoint:
    id: str
    job_id: str
    step: int
    epoch: float
    path: str
    model_name: str | None
    metrics: dict = field(default_factory=dict)
    created_at: float = 0.0

    def as_openai(self) -> dict:
        return {
            "object": "fine_tuning.job.checkpoint",
            "id": self.id,
            "created_at": int(self.created_at),
            "fine_tuned_model_checkpoint": self.model_name,
            "fine_tuning_job_id": self.job_id,
            "metrics": {"step": self.step, **self.metrics},
            "step_number": self.step,
        }


def _job(row) -> Job:
    return Job(
        id=row["id"],
        project_id=row["project_id"],
        model=row["model"],
        suffix=row["suffix"],
        status=row["status"],
        training_file=row["training_file"],
        validation_file=row["validation_file"],
        hyperparameters=json.loads(row["hyperparameters"]),
        resolved=json.loads(row["resolved"]),
        repro=json.loads(row["repro"]),
        seed=row["seed"],
        fine_tuned_model=row["fine_tuned_model"],
        trained_tokens=row["trained_tokens"],
        error=json.loads(row["error"]) if row["error"] else None,
        cancel_requested=bool(row["cancel_requested"]),
        attempts=row["attempts"],
        created_at=row["created_at"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        estimated_finish=row["estimated_finish"],
        worker_pid=row["worker_pid"],
    )


def insert_job(
    *,
    project_id: str,
    model: str,
    suffix: str | None,
    training_file: str,
    validation_file: str | None,
    hyperparameters: dict,
    seed: int,
    db: Database | None = None,
) -> Job:
    db = db or get_db()
    jid = new_id("ftjob")
    db.execute(
        "INSERT INTO ft_jobs(id, project_id, model, suffix, status, training_file, validation_file,"
        " hyperparameters, seed, created_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
        (
            jid,
            project_id,
            model,
            suffix,
            "validating_files",
            training_file,
            validation_file,
            json.dumps(hyperparameters),
            seed,
            time.time(),
        ),
    )
    return load(jid, project_id, db)


def load(job_id: str, project_id: str | None = DEFAULT_PROJECT, db: Database | None = None) -> Job:
    """The job; NotFound when it does not exist or belongs to another project (None: any project)."""
    db = db or get_db()
    if project_id is None:
        row = db.one("SELECT * FROM ft_jobs WHERE id=?", (job_id,))
    else:
        row = db.one("SELECT * FROM ft_jobs WHERE id=? AND project_id=?", (job_id, project_id))
    if row is None:
        raise NotFound(f"no fine-tuning job with id {job_id!r}", code="job_not_found", param="fine_tuning_job_id")
    return _job(row)


def list_jobs(project_id: str, after: str | None, limit: int, db: Database | None = None) -> list[Job]:
    db = db or get_db()
    sql, args = "SELECT * FROM ft_jobs WHERE project_id=?", [project_id]
    if after:
        ref = load(after, project_id, db)
        sql += " AND (created_at < ? OR (created_at = ? AND id < ?))"
        args += [ref.created_at, ref.created_at, ref.id]
    sql += " ORDER BY created_at DESC, id DESC LIMIT ?"
    return [_job(r) for r in db.query(sql, (*args, limit))]


def update(job_id: str, db: Database | None = None, **fields) -> None:
    db = db or get_db()
    cols, vals = [], []
    for k, v in fields.items():
        cols.append(f"{k}=?")
        vals.append(json.dumps(v) if isinstance(v, dict) else v)
    db.execute(f"UPDATE ft_jobs SET {', '.join(cols)} WHERE id=?", (*vals, job_id))


def add_event(
    job_id: str,
    message: str,
    *,
    level: str = "info",
    type: str = "message",
    data: dict | None = None,
    db: Database | None = None,
) -> Event:
    db = db or get_db()
    ev = Event(new_id("ftevent"), job_id, level, type, message, data, time.time())
    with db.tx() as conn:
        ev.seq = conn.execute(
            "INSERT INTO ft_events(id, job_id, level, type, message, data, created_at) VALUES (?,?,?,?,?,?,?)"
            " RETURNING seq",
            (ev.id, job_id, level, type, message, json.dumps(data) if data is not None else None, ev.created_at),
        ).fetchone()[0]
    return ev


def events(
    job_id: str,
    *,
    after_seq: int = 0,
    limit: int = 1000,
    newest_first: bool = False,
    db: Database | None = None,
) -> list[Event]:
    db = db or get_db()
    order = "DESC" if newest_first else "ASC"
    rows = db.query(
        f"SELECT * FROM ft_events WHERE job_id=? AND seq>? ORDER BY seq {order} LIMIT ?",
        (job_id, after_seq, limit),
    )
    return [
        Event(
            r["id"],
            r["job_id"],
            r["level"],
            r["type"],
            r["message"],
            json.loads(r["data"]) if r["data"] else None,
            r["created_at"],
            r["seq"],
        )
        for r in rows
    ]


def event_seq(event_id: str, db: Database | None = None) -> int:
    row = (db or get_db()).one("SELECT seq FROM ft_events WHERE id=?", (event_id,))
    if row is None:
        raise NotFound(f"no fine-tuning event with id {event_id!r}", param="after")
    return row["seq"]


def last_event_seq(db: Database | None = None) -> int:
    """The newest event's sequence number over all jobs (0 when none): a mark to look for later events."""
    return (db or get_db()).one("SELECT COALESCE(MAX(seq), 0) AS s FROM ft_events")["s"]


def trained_since(seq: int, db: Database | None = None) -> bool:
    """Whether any job logged a training step after event `seq`."""
    return (db or get_db()).one("SELECT 1 FROM ft_events WHERE seq > ? AND type='metrics' LIMIT 1", (seq,)) is not None


def any_with_status(statuses: tuple[str, ...], db: Database | None = None) -> bool:
    marks = ",".join("?" * len(statuses))
    return (db or get_db()).one(f"SELECT 1 FROM ft_jobs WHERE status IN ({marks}) LIMIT 1", statuses) is not None


def add_checkpoint(
    job_id: str,
    step: int,
    epoch: float,
    path: str,
    model_name: str | None,
    metrics: dict,
    db: Database | None = None,
) -> Checkpoint:
    """Record a checkpoint (once per step). A new one is progress: `attempts` counts again from 0."""
    db = db or get_db()
    ck = Checkpoint(new_id("ftckpt"), job_id, step, epoch, path, model_name, metrics, time.time())
    with db.tx() as conn:
        cur = conn.execute(
            "INSERT INTO ft_checkpoints(id, job_id, step, epoch, path, model_name, metrics,"
            " created_at) VALUES (?,?,?,?,?,?,?,?) ON CONFLICT (job_id, step) DO NOTHING",
            (ck.id, job_id, step, epoch, path, model_name, json.dumps(metrics), ck.created_at),
        )
        if cur.rowcount:
            # attempts = attempts since the last progress, so a job that is killed often but
            # moves forward each time is never failed for it (see leases.MAX_ATTEMPTS)
            conn.execute("UPDATE ft_jobs SET attempts=0 WHERE id=?", (job_id,))
    return ck


def checkpoints(job_id: str, db: Database | None = None) -> list[Checkpoint]:
    rows = (db or get_db()).query("SELECT * FROM ft_checkpoints WHERE job_id=? ORDER BY step DESC", (job_id,))
    return [
        Checkpoint(
            r["id"],
            r["job_id"],
            r["step"],
            r["epoch"],
            r["path"],
            r["model_name"],
            json.loads(r["metrics"]),
            r["created_at"],
        )
        for r in rows
    ]


def last_training_speeds(model: str, project_id: str, db: Database | None = None) -> list[float]:
    """The tokens/s of every metrics event of the latest succeeded job on this base model."""
    db = db or get_db()
    job = db.one(
        "SELECT id FROM ft_jobs WHERE model=? AND project_id=? AND status='succeeded'"
        " ORDER BY finished_at DESC LIMIT 1",
        (model, project_id),
    )
    if job is None:
        return []
    rows = db.query("SELECT data FROM ft_events WHERE job_id=? AND type='metrics'", (job["id"],))
    return [v for r in rows if r["data"] for v in [json.loads(r["data"]).get("tokens_per_second")] if v]


def worker_of(job_id: str, db: Database | None = None) -> str | None:
    """The worker id a running job carries (None when no worker holds it)."""
    row = (db or get_db()).one("SELECT worker_id FROM ft_jobs WHERE id=? AND status='running'", (job_id,))
    return row["worker_id"] if row is not None else None


def ids_with_status(
    statuses: tuple[str, ...], *, older_than: float | None = None, db: Database | None = None
) -> list[str]:
    """Ids of the jobs in one of `statuses` (created before `older_than` when given), oldest first."""
    sql = "SELECT id FROM ft_jobs WHERE status IN (" + ",".join("?" * len(statuses)) + ")"
    args: tuple = statuses
    if older_than is not None:
        sql += " AND created_at < ?"
        args += (older_than,)
    return [r["id"] for r in (db or get_db()).query(sql + " ORDER BY created_at", args)]


def owned_by(job_id: str, worker_id: str, db: Database | None = None) -> bool:
    """Whether `worker_id` still holds this running job (its lease was not reclaimed meanwhile)."""
    row = (db or get_db()).one("SELECT status, worker_id FROM ft_jobs WHERE id=?", (job_id,))
    return row is not None and row["status"] == "running" and row["worker_id"] == worker_id


def finish(job_id: str, status: str, db: Database | None = None, *, owner: str | None = None, **fields) -> bool:
    """End the job; with `owner`, only while that worker still holds it (False, nothing written, if not)."""
    db = db or get_db()
    with db.tx():
        if owner is not None and not owned_by(job_id, owner, db):
            return False
        update(job_id, db, status=status, finished_at=time.time(), worker_id=None, lease_expires_at=None, **fields)
    return True


def fail(job_id: str, code: str, message: str, db: Database | None = None, *, owner: str | None = None) -> bool:
    db = db or get_db()
    with db.tx():
        if not finish(job_id, "failed", db, owner=owner, error={"code": code, "message": message, "param": None}):
            return False
        add_event(job_id, f"Job failed: {message}", level="error", db=db)
    return True


def resume_command(job_id: str, project_id: str, db: Database | None = None) -> str:
    """The exact CLI command that resumes this job (with `--project` outside the default project)."""
    if project_id == DEFAULT_PROJECT:
        return f"ladder jobs resume {job_id}"
    row = (db or get_db()).one("SELECT name FROM projects WHERE id=?", (project_id,))
    return f"ladder jobs resume {job_id} --project {row['name'] if row else project_id}"


def require_status(job: Job, allowed: tuple[str, ...], action: str) -> None:
    if job.status not in allowed:
        raise Conflict(f"cannot {action} job {job.id}: it is {job.status}")
