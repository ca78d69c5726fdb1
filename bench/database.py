"""`--database` for the bench scripts: SQLite (default), a postgresql:// URL, or `pgserver`.

`pgserver` starts a throw-away PostgreSQL 16 with pgvector from the pgserver package (a dev
dependency) under the bench's work dir and stops it at exit, so the PostgreSQL figures need no set-up.
"""

from __future__ import annotations

import os
from pathlib import Path


def add_argument(ap) -> None:
    ap.add_argument(
        "--database",
        default="sqlite",
        help="sqlite (default), a postgresql://… URL of an empty database, or pgserver (a local throw-away one)",
    )


def use(choice: str, work: Path) -> str:
    """Point LADDER_DATABASE_URL at the chosen engine; returns its name for the printed table."""
    if choice == "sqlite":
        os.environ.pop("LADDER_DATABASE_URL", None)
        return "sqlite"
    if choice == "pgserver":
        import pgserver

        server = pgserver.get_server(work / "pgdata", cleanup_mode="stop")
        choice = server.get_uri("postgres")
    if not choice.startswith(("postgresql://", "postgres://")):
        raise SystemExit(f"--database must be sqlite, pgserver or a postgresql:// URL, not {choice!r}")
    os.environ["LADDER_DATABASE_URL"] = choice
    return "postgresql"
