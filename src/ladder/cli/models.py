"""`ladder models list|add|add-remote|remove`."""

from __future__ import annotations

import typer
from rich.table import Table

from ladder.cli.console import console
from ladder.models import registry

app = typer.Typer(
    help="Register and list models (local GGUF or HF dirs, remote OpenAI-compatible, tuned).", no_args_is_help=True
)


def _size(n: int | None) -> str:
    if n is None:
        return "-"
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


@app.command("list")
def list_cmd() -> None:
    """Every registered model with its backend, size and where it lives."""
    table = Table("name", "backend", "size", "where")
    for spec in registry.list_models():
        backend = spec.backend + (" (+torch)" if spec.is_gguf and spec.backend == "llamacpp" else "")
        if spec.is_tuned and spec.is_gguf:
            backend += " (+llamacpp)"
        table.add_row(spec.name, backend, _size(spec.size_bytes()), spec.where)
    console.print(table)


@app.command("add")
def add(name: str, path: str = typer.Argument(..., help="a .gguf file or a Hugging Face model directory")) -> None:
    """Register a local model."""
    spec = registry.add_local(name, path)
    console.print(f"registered [bold]{spec.name}[/] ({spec.backend}) at {spec.path}")


@app.command("add-remote")
def add_remote(
    name: str,
    base_url: str = typer.Option(..., help="e.g. https://api.openai.com/v1 or http://127.0.0.1:8000/v1"),
    model: str = typer.Option(..., help="the model name the endpoint knows"),
    api_key_env: str = typer.Option(
        None,
        help="environment variable holding the API key, sent to the endpoint as a bearer token: its name "
        "must end in _API_KEY, _TOKEN or _KEY, or be listed in LADDER_REMOTE_KEY_ENVS",
    ),
    server: str = typer.Option(
        "openai",
        help="how the endpoint constrains output: openai (response_format json_schema), vllm (guided_choice, "
        "guided_regex too), plain (neither: answers are validated and retried once)",
    ),
) -> None:
    """Register a model served by an OpenAI-compatible endpoint."""
    spec = registry.add_remote(name, base_url, model, api_key_env, server=server)
    console.print(f"registered [bold]{spec.name}[/] -> {spec.where}")


@app.command("remove")
def remove(name: str) -> None:
    """Unregister a model (files on disk are left as they are; a tuned adapter in LADDER_BLOB_URL is deleted)."""
    registry.remove(name)
    console.print(f"removed {name}")
