"""`ladder admin sweep`: clear what crashed processes left in the data dir."""

from __future__ import annotations

import typer

from ladder.cli.console import console

app = typer.Typer(help="Data-dir housekeeping for operators.", no_args_is_help=True)


@app.command("sweep")
def sweep_cmd(
    no_grace: bool = typer.Option(
        False,
        "--no-grace",
        help="take temp files and orphan blobs of any age; only when no other ladder process is running",
    ),
) -> None:
    """Remove temp files, orphan blobs, partial checkpoints and abandoned run dirs (the server and
    the worker do this at start; young leftovers wait out a grace period in case a live process owns them)."""
    from ladder.store import sweep

    grace = {"tmp_grace_s": 0.0, "blob_grace_s": 0.0} if no_grace else {}
    report = sweep.sweep(**grace)
    console.print(report.summary())
    for p in report.tmp + report.blobs + report.scratch:
        console.print(f"  {p}", highlight=False)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="admin")
