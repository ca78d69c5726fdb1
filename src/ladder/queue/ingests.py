"""Ingest tasks: a large KB upload stored as a file and queued; a worker parses, chunks, embeds and commits it.

The documents, chunks, vectors and usage row are written by `commit_upload` inside the worker's final
transaction (the one that marks the task `succeeded`, only while the worker holds the lease), so a
document is searchable only once its task has succeeded, exactly once however many workers tried,
and a failure, a cancel or a lost lease leaves no document row behind. The upload itself (a `file-…`
of purpose `knowledge`, readable from any machine through the blob store) goes with the documents on
success and is deleted when the task ends failed or cancelled.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass

from ladder.errors import NotFound, Stopped
from ladder.knowledge.records import AddResult, Doc, doc_from_row, find_kb
from ladder.queue import store
from ladder.queue.context import Outcome, TaskContext
from ladder.queue.store import Task
from ladder.store.db import Database, get_db

log = logging.getLogger("ladder.queue")
KIND = "ingest"
ENDED = ("failed", "cancelled")  # an upload of a task that ended so is deleted
SCANNED = 1000


@dataclass
class IngestParams:
    """What an ingest task adds, stored as JSON on the task; the upload by file id, so any machine reads it."""

    kb_id: str
    kb: str  # the KB's name when queued (shown back on the task)
    file_id: str
    filename: str
    bytes: int
    sha256: str
    policy: str = "replace"
    metadata: dict | None = None
    text_column: str | None = None

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> IngestParams:
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})


def should_queue(size: int, wait: bool | None) -> bool:
    """Queue an upload of `size` bytes? `wait` decides when given; else over LADDER_KB_QUEUE_BYTES is queued."""
    from ladder.settings import get_settings

    if wait is not None:
        return not wait
    return size > get_settings().kb_queue_bytes


def queue_upload(
    kb: str,
    filename: str,
    data: bytes,
    *,
    policy: str = "replace",
    metadata: dict | None = None,
    text_column: str | None = None,
    project_id: str,
) -> Task | AddResult:
    """Check what can be checked without parsing, store the upload and queue its ingest (one transaction).

    Returns the queued task, or the AddResult when there is nothing to do (the same content is already
    in the KB, or `skip` and the name is there), exactly as a synchronous upload answers then.
    """
    from ladder.knowledge.bounded import check_upload
    from ladder.knowledge.budget import check_budget_left
    from ladder.knowledge.embedder import get_embedder
    from ladder.knowledge.ingest import precheck
    from ladder.store import files
    from ladder.store.blobs import delete_blob

    checked = precheck(
        kb, filename, data, policy=policy, metadata=metadata, project_id=project_id, embedder=get_embedder()
    )
    if checked.early is not None:
        return checked.early
    check_upload(checked.name, checked.data)  # the type, the size limit, not empty: 400 now, not a failed task
    db = get_db()
    check_budget_left(checked.name, project_id, db)
    rec = None
    try:
        with db.tx():  # the file and its task commit together: no upload without the task that owns it
            rec = files.create(checked.data, checked.name, "knowledge", project_id=project_id, db=db)
            params = IngestParams(
                checked.kb.id,
                checked.kb.name,
                rec.id,
                checked.name,
                len(checked.data),
                checked.digest,
                policy,
                metadata,
                text_column,
            )
            return store.enqueue(KIND, project_id, params.as_dict(), db=db)
    except BaseException:
        if rec is not None:
            delete_blob(rec.id, rec.blob_path)
        raise


def run(task: Task, ctx: TaskContext) -> Outcome:
    """Parse, chunk and embed the upload (progress per batch, cancel between batches); the commit is the
    worker's final transaction, so nothing of the document exists until the task has succeeded."""
    from ladder.knowledge.budget import check_budget
    from ladder.knowledge.embedder import get_embedder
    from ladder.knowledge.ingest import chunk_upload, commit_upload, embed_batches, precheck
    from ladder.store import files
    from ladder.store.blobs import delete_blob

    discard_ended_uploads()  # what an earlier cancel or failure, on any machine, left
    p = IngestParams.from_dict(task.params)
    emb = get_embedder()
    try:
        rec = files.resolve_file(p.file_id, task.project_id, "file")
        ctx.report({"stage": "parsing", "done": 0, "total": None})
        checked = precheck(
            p.kb_id,
            p.filename,
            rec.read_bytes(),
            policy=p.policy,
            metadata=p.metadata,
            project_id=task.project_id,
            embedder=emb,
        )
        if checked.early is not None:  # the same content (or, with skip, the name) arrived meanwhile
            ctx.report({"stage": checked.early.status, "done": 0, "total": 0})
            return Outcome(rec.id, lambda: None, after=lambda: _discard(task.project_id, [rec.id]))
        chunked = chunk_upload(checked.kb, checked.name, checked.data, text_column=p.text_column, embedder=emb)
        total = len(chunked.texts)
        check_budget(checked.name, total, task.project_id)  # before any embedding, as a synchronous upload
        ctx.report({"stage": "embedding", "done": 0, "total": total})
        start = time.perf_counter()
        vectors = embed_batches(
            emb,
            chunked.texts,
            lambda done, n: ctx.report({"stage": "embedding", "done": done, "total": n}),
            should_stop=ctx.should_stop,
        )
        latency = (time.perf_counter() - start) * 1000
        ctx.check()
        ctx.report({"stage": "committing", "done": total, "total": total})
    except Stopped:
        if store.cancel_requested(task.id):  # cancelled, not handed back: the upload goes with it
            _discard_own(task, p.file_id)
        raise
    except Exception:
        if not ctx.should_stop():  # it ends failed here (a lost lease is another worker's to finish)
            _discard_own(task, p.file_id)
        raise
    replaced: list[str] = []

    def save() -> None:
        _, blobs = commit_upload(
            checked,
            chunked,
            vectors,
            latency,
            policy=p.policy,
            metadata=p.metadata,
            project_id=task.project_id,
            embedder=emb,
            file_id=rec.id,
        )
        replaced.extend(blobs)

    def after() -> None:
        for blob in replaced:
            delete_blob(blob)

    return Outcome(rec.id, save, after)


# -- the uploads of ended tasks ------------------------------------------------------------


def _discard(project_id: str, file_ids: list[str], db: Database | None = None) -> list[str]:
    """Delete these uploads unless a document came from them (one transaction); returns those deleted."""
    from ladder.store.blobs import delete_blob

    db = db or get_db()
    gone = []
    with db.tx() as conn:
        for fid in file_ids:
            row = conn.execute(
                "SELECT id, blob_path FROM files WHERE id=? AND project_id=?"
                " AND NOT EXISTS (SELECT 1 FROM kb_docs WHERE file_id=files.id)",
                (fid, project_id),
            ).fetchone()
            if row is not None:
                conn.execute("DELETE FROM files WHERE id=?", (fid,))
                gone.append((row["id"], row["blob_path"]))
    for fid, location in gone:
        delete_blob(fid, location)
    return [fid for fid, _ in gone]


def _discard_own(task: Task, file_id: str) -> None:
    """The upload of a task that ends here, while it is still this worker's (never another's input)."""
    try:
        row = get_db().one("SELECT status, worker_id FROM tasks WHERE id=?", (task.id,))
        if row is not None and row["status"] == "running" and row["worker_id"] == task.worker_id:
            _discard(task.project_id, [file_id])
    except Exception:  # the task's end matters more; `discard_ended_uploads` removes it later
        log.exception("removing the upload of %s failed", task.id)


def discard_ended_uploads(db: Database | None = None) -> list[str]:
    """Delete the uploads of every failed or cancelled ingest (a cancel of a queued task, a cancel that won
    at the commit, a worker that died three times); returns the file ids deleted."""
    db = db or get_db()
    rows = db.query("SELECT project_id, params FROM tasks WHERE kind=? AND status IN (?,?)", (KIND, *ENDED))
    by_project: dict[str, list[str]] = {}
    for r in rows:
        fid = json.loads(r["params"] or "{}").get("file_id")
        if fid:
            by_project.setdefault(r["project_id"], []).append(fid)
    deleted = []
    for project_id, fids in by_project.items():
        left = [
            f for f in fids if db.one("SELECT 1 FROM files WHERE id=? AND project_id=?", (f, project_id)) is not None
        ]  # read first: the write lock is taken only when something is left to delete
        if left:
            deleted += _discard(project_id, left, db)
    return deleted


# -- reading and cancelling ----------------------------------------------------------------


def get_ingest(kb: str, task_id: str, project_id: str) -> Task:
    """The ingest task of this KB (NotFound for another KB's or project's, as for one that does not exist)."""
    db = get_db()
    found = find_kb(db, kb, project_id)
    task = store.get(task_id, project_id, KIND, db)
    if task.params.get("kb_id") != found.id:
        raise NotFound(f"no ingest {task_id[:100]!r} in knowledge base {found.name!r}", param="id")
    return task


def list_ingests(kb: str, project_id: str, *, pending: bool = False, limit: int = 50) -> list[Task]:
    """The KB's ingest tasks, newest first (only queued and running ones with `pending`)."""
    db = get_db()
    found = find_kb(db, kb, project_id)
    sql = "SELECT * FROM tasks WHERE project_id=? AND kind=?"
    if pending:
        sql += " AND status IN ('queued','running')"
    # The KB is in the JSON params, read in Python (no JSON operator both engines share); the newest
    # SCANNED of the project's ingests are looked at.
    rows = db.query(sql + " ORDER BY created_at DESC, id LIMIT ?", (project_id, KIND, SCANNED))
    tasks = [Task.from_row(r) for r in rows]
    return [t for t in tasks if t.params.get("kb_id") == found.id][:limit]


def cancel_ingest(kb: str, task_id: str, project_id: str) -> Task:
    """A queued ingest ends `cancelled` at once (its upload deleted); a running one stops at its next batch."""
    get_ingest(kb, task_id, project_id)
    task = store.request_cancel(task_id, project_id, KIND)
    if task.done:
        discard_ended_uploads()
    return task


def result_docs(task: Task) -> list[Doc]:
    """The documents a succeeded ingest added (those still there)."""
    if task.status != "succeeded" or not task.run_id:
        return []
    rows = get_db().query("SELECT * FROM kb_docs WHERE file_id=? ORDER BY created_at, name", (task.run_id,))
    return [doc_from_row(r) for r in rows]


def as_dict(task: Task, docs: list[Doc] | None = None) -> dict:
    """An ingest task as the API and `ladder kb ingests --json` show it; `result` once it has succeeded."""
    p = task.params
    out = {
        "id": task.id,
        "object": "ingest.task",
        "status": task.status,
        "kb": p.get("kb"),
        "kb_id": p.get("kb_id"),
        "filename": p.get("filename"),
        "bytes": p.get("bytes"),
        "file_id": p.get("file_id"),
        "policy": p.get("policy"),
        "progress": task.progress,
        "error": task.error,
        "attempts": task.attempts,
        "cancel_requested": task.cancel_requested,
        "created_at": int(task.created_at),
        "started_at": int(task.started_at) if task.started_at else None,
        "finished_at": int(task.finished_at) if task.finished_at else None,
    }
    if task.status == "succeeded":
        docs = docs or []
        out["result"] = {"docs": [d.as_dict() for d in docs], "chunks": sum(d.n_chunks for d in docs)}
    return out
