"""`ladder db`: the database behind this install (which engine, migrating SQLite to PostgreSQL)."""

from __future__ import annotations

import typer

from ladder.cli.console import console, err_console

app = typer.Typer(help="The database: where it is, and moving a SQLite install to PostgreSQL.", no_args_is_help=True)


@app.command("info")
def info_cmd() -> None:
    """Say which database this install uses and which migrations it has."""
    from ladder.store.db import get_db

    db = get_db()
    where = db.path if db.engine == "sqlite" else _without_password(db.url)
    number = db.one("SELECT MAX(number) FROM schema_migrations")[0]
    console.print(f"{db.engine} at {where}, schema {number}", highlight=False)


@app.command("migrate-to")
def migrate_to_cmd(
    url: str = typer.Argument(..., help="postgresql://… of a new, empty database"),
    shared_dir: str = typer.Option(
        None,
        "--shared-dir",
        help="the deployment's LADDER_SHARED_DIR: paths under this LADDER_HOME (adapters, checkpoints, reports)"
        " are rewritten to it; copy tuning/, climbs/, reports/ and exports/ there",
    ),
) -> None:
    """Copy this install's SQLite database into a PostgreSQL one (all or nothing; SQLite is left as it was).

    With LADDER_BLOB_URL set, uploaded files are copied into that blob store too. Then set LADDER_DATABASE_URL
    (and LADDER_BLOB_URL, LADDER_SHARED_DIR) on every server and worker.
    """
    from ladder.errors import LadderError
    from ladder.settings import get_settings
    from ladder.store.copy_engine import copy_sqlite_to_postgres
    from ladder.store.db import open_database

    settings = get_settings()
    if settings.database_url:
        fail("LADDER_DATABASE_URL is set: this install already uses PostgreSQL (unset it to migrate from SQLite)")
    if not url.startswith(("postgresql://", "postgres://")):
        fail(f"the target must be a postgresql:// URL, not {url[:30]!r}")
    if not settings.db_path.exists():
        fail(f"no SQLite database at {settings.db_path} (check LADDER_HOME)")
    source = open_database(None, settings.db_path)
    try:
        target = open_database(url, settings.db_path)
    except LadderError as e:
        fail(e.message)
    try:
        report = copy_sqlite_to_postgres(
            source,
            target,
            shared_dir=shared_dir.rstrip("/") if shared_dir else None,
            on_table=lambda t, n: console.print(f"  {t}: {n}", highlight=False),
        )
    except ValueError as e:
        fail(str(e))
    finally:
        target.close()
    console.print(report.summary(), highlight=False)
    console.print(f"next: export LADDER_DATABASE_URL='{url}' on every `ladder serve` and `ladder worker`")


def fail(message: str) -> None:
    err_console.print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(1)


def _without_password(url: str) -> str:
    from ladder.store.postgres import _safe

    return _safe(url)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="db")
