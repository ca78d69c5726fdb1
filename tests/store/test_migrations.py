"""Every older schema migrates forward to the same schema a fresh database gets, on both engines."""

from __future__ import annotations

import sqlite3
import time

import psycopg
import pytest

from ladder.store.db import Database
from ladder.store.migrations import migrations, split_sql
from ladder.store.postgres import PostgresDatabase


def _sqlite_schema(db: Database) -> dict[str, list[tuple]]:
    tables = [r[0] for r in db.query("SELECT name FROM sqlite_master WHERE type='table' ORDER BY name")]
    return {t: [tuple(r)[1:] for r in db.query(f"PRAGMA table_info({t})")] for t in tables if t != "schema_migrations"}


def _sqlite_at(path, number: int) -> None:
    """A database as an install at migration `number` left it (with a row written then)."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("CREATE TABLE schema_migrations (number INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at REAL)")
    for n, name, sql in migrations("sqlite"):
        if n > number:
            break
        for statement in split_sql(sql):
            conn.execute(statement)
        conn.execute("INSERT INTO schema_migrations VALUES (?,?,?)", (n, name, time.time()))
    conn.execute("INSERT INTO projects(id, name, created_at) VALUES ('proj-old', 'old', 1.0)")
    conn.close()


@pytest.mark.parametrize("number", [n for n, _, _ in migrations("sqlite")])
def test_a_sqlite_database_at_every_migration_moves_to_the_fresh_schema(tmp_path, number):
    fresh = Database(tmp_path / "fresh.db")
    _sqlite_at(tmp_path / "old.db", number)
    old = Database(tmp_path / "old.db")  # opening it migrates the rest
    assert _sqlite_schema(old) == _sqlite_schema(fresh)
    assert [r[0] for r in old.query("SELECT number FROM schema_migrations ORDER BY number")] == [
        n for n, _, _ in migrations("sqlite")
    ]
    assert old.one("SELECT name FROM projects WHERE id='proj-old'")[0] == "old"  # data written then is kept


def _pg_schema(db: PostgresDatabase) -> dict[str, list[tuple]]:
    rows = db.query(
        "SELECT table_name, column_name, data_type, is_nullable, column_default FROM information_schema.columns"
        " WHERE table_schema = 'public' AND table_name != 'schema_migrations' ORDER BY table_name, ordinal_position"
    )
    out: dict[str, list[tuple]] = {}
    for r in rows:
        out.setdefault(r[0], []).append(tuple(r)[1:])
    return out


def test_a_postgres_database_at_every_migration_moves_to_the_fresh_schema(postgres):
    fresh_url = postgres.create(migrated=False)
    fresh = PostgresDatabase(fresh_url)
    try:
        for number in [n for n, _, _ in migrations("postgresql")]:
            url = postgres.create(migrated=False)
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute(
                    "CREATE TABLE schema_migrations (number INTEGER PRIMARY KEY, name TEXT, applied_at FLOAT8)"
                )
                for n, name, sql in migrations("postgresql"):
                    if n > number:
                        break
                    conn.execute(sql)
                    conn.execute("INSERT INTO schema_migrations VALUES (%s, %s, 0)", (n, name))
                conn.execute("INSERT INTO projects(id, name, created_at) VALUES ('proj-old', 'old', 1.0)")
            old = PostgresDatabase(url)
            try:
                assert _pg_schema(old) == _pg_schema(fresh), number
                assert old.one("SELECT name FROM projects WHERE id='proj-old'")[0] == "old"
            finally:
                old.close()
                postgres.drop(url)
    finally:
        fresh.close()
        postgres.drop(fresh_url)
