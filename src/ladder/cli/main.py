"""The `ladder` command: registers each area's sub-commands and turns LadderError into a clear message."""

from __future__ import annotations

import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import typer  # noqa: E402

from ladder.cli import admin, bots, chat, climb, data, db, demo, evals, kb, models, serve, tune, usage, worker  # noqa: E402

app = typer.Typer(
    name="ladder",
    help="Customise a language model the careful way: prompt, few-shot, RAG, fine-tune - every rung measured.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(models.app, name="models")
for area in (chat, demo, kb, data, tune, bots, evals, climb, serve, usage, admin, db, worker):
    area.register(app)


def main() -> None:
    from ladder.cli.console import err_console
    from ladder.errors import LadderError

    try:
        app()
    except LadderError as e:
        err_console.print(f"[bold red]error:[/] {e.message}", highlight=False)
        sys.exit(1)
    except KeyboardInterrupt:
        err_console.print("[yellow]interrupted[/]")
        sys.exit(130)


if __name__ == "__main__":
    main()
