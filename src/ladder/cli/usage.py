"""`ladder usage`: tokens, embedded chunks, trained tokens and cost per model, kind or day."""

from __future__ import annotations

import typer
from rich.table import Table

from ladder.cli.console import console


def usage_cmd(
    by: str = typer.Option("model", help="group by model, kind or day"),
    project: str = typer.Option("default", help="project name"),
    days: int = typer.Option(0, help="only the last N days (0: all)"),
) -> None:
    """What this project used and what it cost (from the price table)."""
    import time

    from ladder.errors import InvalidInput
    from ladder.server.keys import project_by_name
    from ladder.store import usage

    if by not in ("model", "kind", "day"):
        raise InvalidInput("--by must be one of model, kind, day", param="by")
    since = time.time() - days * 86400 if days > 0 else None
    rows = usage.summary(project_by_name(project), by=by, since=since)
    table = Table(by, "calls", "prompt tok", "completion tok", "chunks", "trained tok", "cost USD")
    total = 0.0
    for r in rows:
        total += r["cost_usd"] or 0.0
        table.add_row(
            str(r["key"]),
            str(r["calls"]),
            str(r["prompt_tokens"]),
            str(r["completion_tokens"]),
            str(r["embedded_chunks"]),
            str(r["trained_tokens"]),
            f"{r['cost_usd'] or 0:.6f}",
        )
    table.add_row("total", "", "", "", "", "", f"{total:.6f}")
    console.print(table)


def register(app: typer.Typer) -> None:
    """Add `usage` to the top-level app."""
    app.command("usage")(usage_cmd)
