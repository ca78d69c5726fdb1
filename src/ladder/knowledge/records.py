"""Knowledge-base rows: KB and Doc records, lookup by name or id inside a project, deletion of documents."""

from __future__ import annotations

import json
import re
import sqlite3
from dataclasses import asdict, dataclass

import numpy as np

from ladder.errors import InvalidInput, NotFound
from ladder.store.db import Database

KB_NAME_PATTERN = r"^[\w][\w.\-]{0,63}$"  # also the API schema's pattern
_KB_NAME = re.compile(KB_NAME_PATTERN)


@dataclass
class KB:
    id: str
    project_id: str
    name: str
    chunk_size: int
    chunk_overlap: int
    embed_model: str
    embed_dim: int
    generation: int
    created_at: float
    num: int = 0
    vectors_version: int = 0
    docs: int = 0
    chunks: int = 0

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class Doc:
    id: str
    kb_id: str
    name: str
    source: str
    format: str
    bytes: int
    n_chunks: int
    metadata: dict
    created_at: float
    file_id: str | None = None

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class AddResult:
    """What one upload did. status: added | replaced | unchanged | skipped."""

    filename: str
    status: str
    docs: list[Doc]
    chunks: int = 0
    removed_docs: int = 0
    skipped_rows: int = 0

    def as_dict(self) -> dict:
        return {**asdict(self), "docs": [d.as_dict() for d in self.docs]}


def check_kb_name(name: str) -> str:
    if not isinstance(name, str) or not _KB_NAME.match(name):
        raise InvalidInput(
            f"knowledge base name {name!r} must be 1-64 letters, digits, '.', '-' or '_', "
            "starting with a letter or digit",
            param="name",
        )
    return name


def kb_from_row(row: sqlite3.Row, docs: int = 0, chunks: int = 0) -> KB:
    fields = {k: row[k] for k in row.keys() if k in KB.__dataclass_fields__}  # noqa: SIM118 (Row iterates values)
    return KB(**fields, docs=docs, chunks=chunks)


def doc_from_row(row: sqlite3.Row) -> Doc:
    return Doc(
        row["id"],
        row["kb_id"],
        row["name"],
        row["source"],
        row["format"],
        row["bytes"],
        row["n_chunks"],
        json.loads(row["metadata"]),
        row["created_at"],
        row["file_id"],
    )


def find_kb(db: Database | sqlite3.Connection, ref, project_id: str) -> KB:
    """A KB by name or id, only inside the project: another project's KB is simply not found."""
    key = ref.id if isinstance(ref, KB) else ref
    sql, args = "SELECT * FROM kbs WHERE project_id=? AND (id=? OR name=?)", (project_id, key, key)
    row = db.one(sql, args) if hasattr(db, "one") else db.execute(sql, args).fetchone()  # a Database or a connection
    if row is None:
        raise NotFound(f"no knowledge base {key!r}; `ladder kb list` shows the ones there are", param="kb")
    return kb_from_row(row)


def find_docs(conn: sqlite3.Connection, kb_id: str, ref: str) -> list[Doc]:
    """Documents matching an id, a name or an upload's source name (all rows of a .csv)."""
    rows = conn.execute(
        "SELECT * FROM kb_docs WHERE kb_id=? AND (id=? OR name=? OR source=?) ORDER BY created_at",
        (kb_id, ref, ref, ref),
    ).fetchall()
    return [doc_from_row(r) for r in rows]


def delete_docs(conn: sqlite3.Connection, doc_ids: list[str]) -> list[str]:
    """Delete documents, their chunks (the FTS rows go with them by trigger) and their upload records.

    Returns the blob ids to delete from disk once the transaction has committed.
    """
    if not doc_ids:
        return []
    marks = ",".join("?" * len(doc_ids))
    files = [
        r[0]
        for r in conn.execute(
            f"SELECT DISTINCT file_id FROM kb_docs WHERE id IN ({marks}) AND file_id IS NOT NULL", doc_ids
        )
    ]
    if getattr(conn, "engine", "sqlite") == "postgresql":
        from ladder.knowledge.pg_search import count_terms

        count_terms(conn, doc_ids, -1)
    conn.execute(f"DELETE FROM kb_chunks WHERE doc_id IN ({marks})", doc_ids)
    conn.execute(f"DELETE FROM kb_docs WHERE id IN ({marks})", doc_ids)
    orphans = [
        f for f in files if conn.execute("SELECT 1 FROM kb_docs WHERE file_id=? LIMIT 1", (f,)).fetchone() is None
    ]
    for file_id in orphans:
        conn.execute("DELETE FROM files WHERE id=?", (file_id,))
    return orphans


def next_rowids(conn: sqlite3.Connection, kb_id: str, n: int) -> list[int]:
    """n fresh chunk rowids inside the KB's range (never reused, so a stale id can never alias)."""
    num, seq = conn.execute("SELECT num, chunk_seq FROM kbs WHERE id=?", (kb_id,)).fetchone()
    conn.execute("UPDATE kbs SET chunk_seq = chunk_seq + ? WHERE id=?", (n, kb_id))
    return [(num << 32) | (seq + i + 1) for i in range(n)]


def rowid_range(num: int) -> tuple[int, int]:
    return num << 32, (num << 32) | 0xFFFFFFFF


def bump_generation(conn: sqlite3.Connection, kb_id: str) -> None:
    conn.execute("UPDATE kbs SET generation = generation + 1 WHERE id=?", (kb_id,))


def vector_param(engine: str, vec: np.ndarray) -> bytes | str:
    """A chunk's embedding as its column takes it: float32 bytes on SQLite, pgvector's text on PostgreSQL."""
    if engine == "postgresql":
        from ladder.knowledge.pg_search import vector_literal

        return vector_literal(vec)
    return np.asarray(vec, dtype=np.float32).tobytes()
