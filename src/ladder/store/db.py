"""The store's database: SQLite under LADDER_HOME (default) or PostgreSQL (LADDER_DATABASE_URL).

SQLite is one file in WAL mode; `postgres.py` has the shared engine. Both apply their numbered,
append-only migrations at start-up and take the same `?` SQL.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ladder.errors import StoreUnavailable
from ladder.settings import get_settings
from ladder.store.migrations import migrations, split_sql

DEFAULT_PROJECT = "proj-default"


class Database:
    """A SQLite database with one connection per thread.

    Use `db.tx()` for writes: everything inside commits together or not at all.
    """

    engine = "sqlite"

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
    def tx(self, *, exclusive: bool = True) -> Iterator[sqlite3.Connection]:
        """A write transaction (BEGIN IMMEDIATE): commit on success, roll back on any error.

        Nested use joins the outer transaction. SQLite has one writer at a time whatever `exclusive` says.
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

    @contextmanager
    def snapshot(self) -> Iterator[sqlite3.Connection]:
        """A read transaction: every query inside sees the same committed state (joins an open one)."""
        conn = self.connect()
        if conn.in_transaction:
            yield conn
            return
        conn.execute("BEGIN")
        try:
            yield conn
        finally:
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
        for number, name, sql in migrations("sqlite"):
            # Checked inside the write lock so two processes starting together apply each once.
            conn.execute("BEGIN IMMEDIATE")
            try:
                done = conn.execute("SELECT 1 FROM schema_migrations WHERE number=?", (number,)).fetchone()
                if not done:
                    for statement in split_sql(sql):
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
        close_caches(self.caches)
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None


def close_caches(caches: dict[str, object]) -> None:
    """Let a handle's caches release what they hold (thread pools)."""
    for cache in caches.values():
        close = getattr(cache, "close", None)
        if close is not None:
            close()
    caches.clear()


_dbs: dict[str, Database] = {}
_dbs_lock = threading.Lock()


def open_database(url: str | None, sqlite_path: Path) -> Database:
    """PostgreSQL for a postgresql:// URL, else the SQLite file (migrated either way)."""
    if not url:
        return Database(sqlite_path)
    if url.startswith(("postgresql://", "postgres://")):
        from ladder.store.postgres import PostgresDatabase

        return PostgresDatabase(url)  # type: ignore[return-value]
    raise StoreUnavailable(
        f"LADDER_DATABASE_URL must start with postgresql:// (or be unset for SQLite), not {url[:20]!r}",
        code="database_url_invalid",
    )


def get_db() -> Database:
    """The database of the current settings (opened and migrated once per process)."""
    settings = get_settings()
    key = settings.database_url or str(settings.db_path)
    with _dbs_lock:
        db = _dbs.get(key)
        if db is None:
            db = _dbs[key] = open_database(settings.database_url, settings.db_path)
        return db


def reset_dbs() -> None:
    with _dbs_lock:
        for db in _dbs.values():
            db.close()
        _dbs.clear()
