"""A real PostgreSQL with pgvector for the tests (the PyPI package pgserver runs it as a plain process).

`pytest --database postgresql` runs every test on PostgreSQL: each test gets a fresh database cloned
from a migrated template. In either mode, `postgres_url` gives a test its own PostgreSQL database.
"""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import pytest

TEMPLATE = "ladder_template"
_numbers = itertools.count()


def pytest_addoption(parser):
    parser.addoption(
        "--database",
        choices=["sqlite", "postgresql"],
        default=os.environ.get("LADDER_TEST_DATABASE", "sqlite"),
        help="the engine every test's store runs on (default sqlite; env LADDER_TEST_DATABASE)",
    )


class Postgres:
    """One PostgreSQL server for the session, and databases on it made from a migrated template."""

    def __init__(self, root: Path):
        import pgserver
        import psycopg

        self.server = pgserver.get_server(root, cleanup_mode="stop")
        self._psycopg = psycopg
        with self.admin() as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {TEMPLATE} WITH (FORCE)")
            conn.execute(f"CREATE DATABASE {TEMPLATE}")
        from ladder.store.postgres import PostgresDatabase

        PostgresDatabase(self.url(TEMPLATE), max_connections=1).close()

    def url(self, name: str) -> str:
        return self.server.get_uri(name)

    def admin(self):
        return self._psycopg.connect(self.url("postgres"), autocommit=True)

    def create(self, *, migrated: bool = True) -> str:
        """A new empty database's URL: migrated (cloned from the template) or bare."""
        name = f"test_{os.getpid()}_{next(_numbers)}"
        with self.admin() as conn:
            conn.execute(f"CREATE DATABASE {name}" + (f" TEMPLATE {TEMPLATE}" if migrated else ""))
        return self.url(name)

    def drop(self, url: str) -> None:
        name = url.rsplit("/", 1)[-1].split("?", 1)[0]
        with self.admin() as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(scope="session")
def postgres(tmp_path_factory) -> Postgres:
    return Postgres(tmp_path_factory.mktemp("pgdata"))


@pytest.fixture
def postgres_url(postgres) -> str:
    """A fresh, migrated PostgreSQL database for this test (dropped after it)."""
    url = postgres.create()
    yield url
    postgres.drop(url)


@pytest.fixture
def database_url(request) -> str | None:
    """The LADDER_DATABASE_URL every test runs under: None on SQLite, a fresh database with --database postgresql."""
    if request.config.getoption("--database") != "postgresql" or request.node.get_closest_marker("sqlite_only"):
        yield None
        return
    pg = request.getfixturevalue("postgres")
    url = pg.create()
    yield url
    from ladder.store.db import reset_dbs

    reset_dbs()
    pg.drop(url)
