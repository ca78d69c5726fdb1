"""`ladder serve` and `ladder keys create|list|revoke`."""

from __future__ import annotations

import typer
from rich.table import Table

from ladder.cli.console import console

keys_app = typer.Typer(help="API keys for the HTTP server: shown once, stored hashed, revocable.", no_args_is_help=True)


@keys_app.command("create")
def keys_create(
    project: str = typer.Option("default", help="project name (created if missing)"),
    admin: bool = typer.Option(False, "--admin", help="may manage keys and act for any project"),
    name: str = typer.Option("", help="a note to recognise the key by"),
) -> None:
    """Create a key and print it once (only its hash is kept)."""
    from ladder.server import keys

    rec, secret = keys.create_key(project, admin=admin, name=name)
    console.print(
        f"created {rec.id} for project [bold]{rec.project_name}[/]"
        f"{' (admin)' if rec.admin else ''}; the key is shown only now:"
    )
    typer.echo(secret)


@keys_app.command("list")
def keys_list(project: str = typer.Option(None, help="only this project's keys")) -> None:
    """Every key with its prefix, project and state (never the key itself)."""
    from ladder.server import keys

    pid = keys.project_by_name(project) if project else None
    table = Table("prefix", "project", "admin", "name", "state")
    table.add_column("id", no_wrap=True)
    for k in keys.list_keys(pid):
        table.add_row(
            k.id,
            k.prefix + "…",
            k.project_name,
            "yes" if k.admin else "",
            k.name,
            "revoked" if k.revoked_at else "active",
        )
    console.print(table)


@keys_app.command("revoke")
def keys_revoke(key: str = typer.Argument(..., help="the key's id (key-…) or its prefix")) -> None:
    """Revoke a key at once; requests with it get 401."""
    from ladder.server import keys

    rec = keys.revoke_key(key)
    console.print(f"revoked {rec.id} ({rec.prefix}…, project {rec.project_name})")


def serve_cmd(
    host: str = typer.Option("127.0.0.1", help="address to bind; off loopback keys are required"),
    port: int = typer.Option(8000, help="TCP port"),
    log_level: str = typer.Option("info", help="uvicorn log level"),
) -> None:
    """Serve the OpenAI-compatible API, the native API and the web UI."""
    from ladder.server import run

    secret = run.prepare(host)
    if secret:
        console.print(
            "[bold]first start: created an admin API key for project 'default'.[/] "
            "It is shown only now; keep it (send it as `Authorization: Bearer <key>`):"
        )
        typer.echo(secret)
    console.print(f"serving on http://{host}:{port}  (OpenAPI at /openapi.json)")
    run.serve(host, port, log_level=log_level)


def register(app: typer.Typer) -> None:
    """Add `serve` and `keys` to the top-level app."""
    app.command("serve")(serve_cmd)
    app.add_typer(keys_app, name="keys")
