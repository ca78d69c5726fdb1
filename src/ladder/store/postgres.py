"""The PostgreSQL database (LADDER_DATABASE_URL=postgresql://…): the store several machines share.

It offers what `db.Database` offers for SQLite — `tx()`, `query()`, `one()`, `execute()` with
`?` placeholders and rows readable by name or position — so the store modules run unchanged on
both engines. Connections come from a psycopg pool; a thread inside `tx()` keeps its connection
until the transaction ends.

Writes keep SQLite's semantics: `tx()` takes one transaction-scoped advisory lock, so write
transactions run one at a time across every process sharing the database, exactly as SQLite's
`BEGIN IMMEDIATE` does on one machine. Check-then-write code (leases, budgets, unique names) is
therefore correct on both engines without per-query locking; readers never wait (MVCC). Work that
must not serialise (claiming queued jobs) uses its own row locks through `tx(exclusive=False)`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

import psycopg
from psycopg.adapt import Loader
from psycopg_pool import ConnectionPool

from ladder.errors import StoreUnavailable
from ladder.store.migrations import migrations

# pg_advisory_xact_lock key of the single write lock (any constant; "ladder" in ASCII).
WRITE_LOCK = 0x6C6164646572


class Row(tuple):
    """A result row readable as row["column"], row[0] and by unpacking, like sqlite3.Row."""

    __slots__ = ()
    _index: dict[str, int] = {}

    def __getitem__(self, key):  # type: ignore[override]
        if isinstance(key, str):
            try:
                key = self._index[key]
            except KeyError:
                raise IndexError(f"no column named {key!r}") from None
        return tuple.__getitem__(self, key)

    def keys(self) -> list[str]:
        return list(self._index)


@lru_cache(maxsize=512)
def _row_class(names: tuple[str, ...]) -> type[Row]:
    return type("Row", (Row,), {"__slots__": (), "_index": {n: i for i, n in enumerate(names)}})


def _row_factory(cursor: psycopg.Cursor):
    cls = _row_class(tuple(c.name for c in cursor.description or ()))
    return lambda values: cls(values)


@lru_cache(maxsize=2048)
def to_pyformat(sql: str) -> str:
    """`?` placeholders to psycopg's `%s`, and a literal `%` to `%%`, outside quoted strings.

    Written by hand because it is four lines: the store's SQL is written once in SQLite's qmark
    style, and psycopg accepts only the format style.
    """
    out, quote = [], None
    for ch in sql:
        if quote:
            if ch == quote:
                quote = None
            out.append("%%" if ch == "%" else ch)
        elif ch in "'\"":
            quote = ch
            out.append(ch)
        else:
            out.append("%s" if ch == "?" else "%%" if ch == "%" else ch)
    return "".join(out)


class _NumericLoader(Loader):
    """NUMERIC (what SUM() of an integer column gives) as int or float, as SQLite returns it, not Decimal."""

    def load(self, data):
        text = bytes(data).decode()
        return float(text) if any(c in text for c in ".eEN") else int(text)


def _configure(conn: psycopg.Connection) -> None:
    conn.adapters.register_loader("numeric", _NumericLoader)


def _params(params: Sequence | dict) -> Sequence | dict:
    # SQLite stores a bool as 0/1 in an INTEGER column; PostgreSQL refuses a boolean there.
    if isinstance(params, dict):
        return {k: int(v) if isinstance(v, bool) else v for k, v in params.items()}
    return [int(v) if isinstance(v, bool) else v for v in params]


class Connection:
    """A pooled psycopg connection that speaks the store's `?` SQL."""

    engine = "postgresql"

    def __init__(self, raw: psycopg.Connection):
        self.raw = raw

    def execute(self, sql: str, params: Sequence | dict = ()) -> psycopg.Cursor:
        return self.raw.execute(to_pyformat(sql), _params(params), prepare=False)

    def executemany(self, sql: str, seq: Sequence[Sequence]) -> psycopg.Cursor:
        cur = self.raw.cursor()
        cur.executemany(to_pyformat(sql), [_params(p) for p in seq])
        return cur


class PostgresDatabase:
    engine = "postgresql"

    def __init__(self, url: str, *, max_connections: int = 16):
        self.url = url
        self._local = threading.local()
        self.caches: dict[str, object] = {}
        self.caches_lock = threading.Lock()
        try:  # one plain connection first: a wrong URL or a database that is down fails now, with its reason
            psycopg.connect(url, connect_timeout=10).close()
        except psycopg.Error as e:
            raise StoreUnavailable(
                f"cannot connect to the database at LADDER_DATABASE_URL ({_safe(url)}): {str(e).strip()}",
                code="database_unavailable",
            ) from e
        self.pool = ConnectionPool(
            url,
            min_size=1,
            max_size=max_connections,
            kwargs={"autocommit": True, "row_factory": _row_factory},
            configure=_configure,
            open=False,
            name="ladder",
        )
        try:
            self.pool.open(wait=True, timeout=30)
        except Exception as e:
            self.pool.close()
            raise StoreUnavailable(
                f"the connection pool for {_safe(url)} did not open: {e}", code="database_unavailable"
            ) from e
        self.migrate()

    @contextmanager
    def tx(self, *, exclusive: bool = True) -> Iterator[Connection]:
        """A write transaction: commit on success, roll back on any error; nested use joins the outer one.

        exclusive: take the single write lock first (see the module's docstring).
        """
        lock = ("SELECT pg_advisory_xact_lock(%s)", (WRITE_LOCK,)) if exclusive else None
        with self._transaction(lock) as conn:
            yield conn

    @contextmanager
    def snapshot(self) -> Iterator[Connection]:
        """A read-only REPEATABLE READ transaction: every query inside sees one committed state."""
        with self._transaction(("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY", ())) as conn:
            yield conn

    @contextmanager
    def _transaction(self, first: tuple[str, tuple] | None) -> Iterator[Connection]:
        """This thread's open transaction, or a new one on a pooled connection starting with `first`."""
        current = getattr(self._local, "conn", None)
        if current is not None:
            yield current
            return
        with self.pool.connection() as raw, raw.transaction():
            if first:
                raw.execute(*first)
            conn = self._local.conn = Connection(raw)
            try:
                yield conn
            finally:
                self._local.conn = None

    @contextmanager
    def _reader(self) -> Iterator[Connection]:
        current = getattr(self._local, "conn", None)
        if current is not None:
            yield current
            return
        with self.pool.connection() as raw:
            yield Connection(raw)

    def query(self, sql: str, params: Sequence | dict = ()) -> list[Any]:
        with self._reader() as conn:
            return conn.execute(sql, params).fetchall()

    def one(self, sql: str, params: Sequence | dict = ()) -> Any:
        with self._reader() as conn:
            return conn.execute(sql, params).fetchone()

    def execute(self, sql: str, params: Sequence | dict = ()) -> psycopg.Cursor:
        with self.tx() as conn:
            return conn.execute(sql, params)

    def migrate(self) -> list[int]:
        """Apply every PostgreSQL migration not yet recorded (under the write lock); the numbers applied now."""
        applied_now = []
        with self.tx() as conn:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " number INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at DOUBLE PRECISION NOT NULL)"
            )
            done = {r[0] for r in conn.execute("SELECT number FROM schema_migrations").fetchall()}
            for number, name, sql in migrations("postgresql"):
                if number in done:
                    continue
                conn.raw.execute(sql, prepare=False)  # no parameters: psycopg runs a whole script
                conn.execute(
                    "INSERT INTO schema_migrations(number, name, applied_at) VALUES (?,?,?)",
                    (number, name, time.time()),
                )
                applied_now.append(number)
        return applied_now

    def close(self) -> None:
        from ladder.store.db import close_caches

        close_caches(self.caches)
        self.pool.close()


def _safe(url: str) -> str:
    """The URL without its password, for error messages."""
    try:
        info = psycopg.conninfo.conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "an unparsable URL"
    info.pop("password", None)
    return " ".join(f"{k}={v}" for k, v in info.items())
