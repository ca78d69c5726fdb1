"""`ladder db migrate-to`: copy a SQLite install's database into an empty PostgreSQL one.

Every table is copied in one PostgreSQL transaction (all or nothing), in foreign-key order, with the
columns both schemas have. Vectors go from SQLite's float32 blobs to pgvector values, each knowledge
base gets its HNSW index, and identity sequences continue after the copied ids. The SQLite file is
only read. Uploaded files go to the blob store (LADDER_BLOB_URL) when one is set, and their rows
name it. Paths under the old LADDER_HOME (adapters, checkpoints, reports) are rewritten to
`shared_dir` when given, where the operator copies those folders (docs/deploy.md).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ladder.store.db import Database
from ladder.store.postgres import PostgresDatabase

# Foreign-key order. ft_worker (a live process's lease) and schema_migrations are not data.
TABLES = [
    "projects",
    "files",
    "models",
    "usage",
    "kbs",
    "kb_docs",
    "kb_chunks",
    "ft_jobs",
    "ft_events",
    "ft_checkpoints",
    "bots",
    "eval_runs",
    "eval_items",
    "response_cache",
    "climbs",
    "api_keys",
]
IDENTITY = {"usage": "id", "ft_events": "seq"}
# Derived on PostgreSQL from the copied chunks (kb_terms), or SQLite-only (the FTS5 tables).
BATCH = 500
# Columns holding a path of a file the old install wrote under its LADDER_HOME.
PATH_COLUMNS = {
    "models": ("path", "adapter_path"),
    "ft_checkpoints": ("path",),
    "eval_runs": ("report_dir",),
    "climbs": ("report_dir",),
}


@dataclass
class CopyReport:
    rows: dict[str, int]

    def summary(self) -> str:
        total = sum(self.rows.values())
        parts = ", ".join(f"{n} {t}" for t, n in self.rows.items() if n)
        return f"copied {total} rows ({parts or 'nothing'})"


def _columns(db, table: str) -> list[str]:
    if db.engine == "sqlite":
        return [r[1] for r in db.query(f"PRAGMA table_info({table})")]
    rows = db.query(
        "SELECT column_name FROM information_schema.columns WHERE table_name=? AND is_generated='NEVER'"
        " ORDER BY ordinal_position",
        (table,),
    )
    return [r[0] for r in rows]


def _moved(value, old_home: str, shared_dir: str | None):
    if shared_dir and isinstance(value, str) and (value == old_home or value.startswith(old_home + "/")):
        return shared_dir + value[len(old_home) :]
    return value


def _upload_blob(row: dict) -> str:
    """The file's bytes put in the blob store (LADDER_BLOB_URL); its new location."""
    from ladder.store.blobs import is_url, read_blob, write_blob

    if is_url(row["blob_path"]):
        return row["blob_path"]
    return write_blob(row["id"], read_blob(row["blob_path"]))[0]


def copy_sqlite_to_postgres(
    source: Database,
    target: PostgresDatabase,
    *,
    shared_dir: str | None = None,
    on_table: Callable[[str, int], None] | None = None,
) -> CopyReport:
    """Copy everything; refuses a target that already holds data (beyond its default project).

    With LADDER_BLOB_URL set, uploaded files are copied into that store; with `shared_dir`, paths under
    the source's LADDER_HOME are rewritten to lie under it instead."""
    from ladder.knowledge.pg_search import create_vector_index, vector_literal
    from ladder.settings import get_settings

    taken = [t for t in TABLES if t != "projects" and target.one(f"SELECT 1 FROM {t} LIMIT 1")]
    if taken or target.one("SELECT COUNT(*) FROM projects")[0] > 1:
        raise ValueError(
            "the target database is not empty (it has rows in: "
            + ", ".join(taken or ["projects"])
            + "); migrate into a new database"
        )
    old_home = str(source.path.parent)
    blobs = bool(get_settings().blob_url)
    rows: dict[str, int] = {}
    with target.tx() as out:
        out.execute("DELETE FROM projects")  # the migration's default project; the source has its own
        for table in TABLES:
            cols = [c for c in _columns(source, table) if c in set(_columns(target, table))]
            names = ", ".join(cols)
            marks = ", ".join("?" for _ in cols)
            vec = cols.index("embedding") if "embedding" in cols else None
            paths = [cols.index(c) for c in PATH_COLUMNS.get(table, ())]
            n = 0
            cur = source.connect().execute(f"SELECT {names} FROM {table}")
            while batch := cur.fetchmany(BATCH):
                values = [list(r) for r in batch]
                for v in values:
                    if vec is not None:
                        v[vec] = vector_literal(np.frombuffer(v[vec], dtype=np.float32))
                    for i in paths:
                        v[i] = _moved(v[i], old_home, shared_dir)
                    if table == "files" and blobs:
                        v[cols.index("blob_path")] = _upload_blob(dict(zip(cols, v, strict=True)))
                out.executemany(f"INSERT INTO {table} ({names}) VALUES ({marks})", values)
                n += len(values)
            rows[table] = n
            if on_table:
                on_table(table, n)
        for table, col in IDENTITY.items():
            out.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', '{col}'),"
                f" COALESCE((SELECT MAX({col}) FROM {table}), 0) + 1, false)"
            )
        for kb in out.execute("SELECT id, num, embed_dim FROM kbs").fetchall():
            create_vector_index(out, kb[0], kb[1], kb[2])
        out.execute(
            "INSERT INTO kb_terms(kb_id, lexeme, df) SELECT c.kb_id, t.lexeme, count(*)"
            " FROM kb_chunks c, unnest(c.tsv) t GROUP BY c.kb_id, t.lexeme"
        )
    return CopyReport(rows)
