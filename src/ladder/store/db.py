"""The SQLite database: one file in WAL mode, numbered append-only migrations applied at start-up."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path

from ladder.settings import get_settings

DEFAULT_PROJECT = "proj-default"


def _migrations(engine: str = "sqlite") -> list[tuple[int, str, str]]:
    """(number, name, sql) for every `NNNN_name.sql` shipped in ladder/store/migrations/<engine>, in order."""
    found = []
    for entry in resources.files(f"ladder.store.migrations.{engine}").iterdir():
        name = entry.name
        if name.endswith(".sql") and name[:4].isdigit():
            found.append((int(name[:4]), name[5:-4], entry.read_text(encoding="utf-8")))
    found.sort()
    numbers = [n for n, _, _ in found]
    if len(set(numbers)) != len(numbers):
        raise RuntimeError(f"two migrations share a number: {numbers}")
    return found


class Database:
    """A SQLite database with one connection per thread.

    Use `db.tx()` for writes: everything inside commits together or not at all.
    """

    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        # Per-process caches of derived data (keyword statistics, vector matrices), keyed by area: they
        # live and die with this handle, so two databases in one process never share one.
        self.caches: dict[str, object] = {}
        self.caches_lock = threading.Lock()
        self.migrate()

    def connect(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("PRAGMA busy_timeout=30000")
            self._local.conn = conn
        return conn

    @property
    def conn(self) -> sqlite3.Connection:
        return self.connect()

    @contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        """A write transaction (BEGIN IMMEDIATE): commit on success, roll back on any error.

        Nested use joins the outer transaction.
        """
        conn = self.connect()
        if conn.in_transaction:
            yield conn
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        else:
            conn.execute("COMMIT")

    def query(self, sql: str, params: tuple | dict = ()) -> list[sqlite3.Row]:
        return self.connect().execute(sql, params).fetchall()

    def one(self, sql: str, params: tuple | dict = ()) -> sqlite3.Row | None:
        return self.connect().execute(sql, params).fetchone()

    def execute(self, sql: str, params: tuple | dict = ()) -> sqlite3.Cursor:
        with self.tx() as conn:
            return conn.execute(sql, params)

    def migrate(self) -> list[int]:
        """Apply every migration not yet recorded; returns the numbers applied now."""
        conn = self.connect()
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " number INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at REAL NOT NULL)"
        )
        applied_now = []
        for number, name, sql in _migrations():
            # Checked inside the write lock so two processes starting together apply each once.
            conn.execute("BEGIN IMMEDIATE")
            try:
                done = conn.execute("SELECT 1 FROM schema_migrations WHERE number=?", (number,)).fetchone()
                if not done:
                    for statement in _split_sql(sql):
                        conn.execute(statement)
                    conn.execute(
                        "INSERT INTO schema_migrations(number, name, applied_at) VALUES (?,?,?)",
                        (number, name, time.time()),
                    )
                    applied_now.append(number)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        return applied_now

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None


def _split_sql(sql: str) -> list[str]:
    """Statements of a migration file (split where sqlite3 says a statement is complete)."""
    statements, current = [], ""
    for line in sql.splitlines(keepends=True):
        current += line
        if sqlite3.complete_statement(current):
            if current.strip():
                statements.append(current.strip())
            current = ""
    if current.strip():
        statements.append(current.strip())
    return statements


_dbs: dict[Path, Database] = {}
_dbs_lock = threading.Lock()


def get_db() -> Database:
    """The database under the current LADDER_HOME (opened and migrated once per process)."""
    path = get_settings().db_path
    with _dbs_lock:
        db = _dbs.get(path)
        if db is None:
            db = _dbs[path] = Database(path)
        return db


def reset_dbs() -> None:
    with _dbs_lock:
        for db in _dbs.values():
            db.close()
        _dbs.clear()
