"""`ladder worker`: run the queues (fine-tunes, evals, climbs and their rungs, KB ingests) on any machine."""

from __future__ import annotations

import signal

import typer

from ladder.cli.console import err_console


def worker_cmd(
    idle_exit: float = typer.Option(
        None, "--idle-exit", help="Exit after SECONDS with no task queued or running (default: run until stopped)."
    ),
    interval: float = typer.Option(1.0, "--interval", help="Seconds between checks of the queue."),
    kinds: str = typer.Option(
        "tune,eval,climb,rung,ingest",
        "--kinds",
        help="Comma-separated kinds to take: tune (fine-tuning jobs), eval, climb, rung (a climb's rungs; a climb"
        " also runs its own while it waits), ingest (large KB uploads).",
    ),
    concurrency: int = typer.Option(
        1, "--concurrency", min=1, max=64, help="Eval/climb/ingest tasks run at once (threads; tune keeps one worker)."
    ),
) -> None:
    """Process the queued work of every project: with `tune`, keeps one fine-tuning worker alive while jobs
    wait; with `eval`/`climb`/`ingest`, claims those tasks (several machines may run `ladder worker` on one
    database)."""
    from ladder.queue.foreground import Foreground, parse_kinds
    from ladder.settings import get_settings
    from ladder.store.sweep import sweep_at_start

    taken = parse_kinds(kinds)
    sweep_at_start()  # what a crash of this or another ladder process left in the data dir
    fg = Foreground(taken, concurrency=concurrency, interval_s=interval)

    def on_term(signum, frame) -> None:  # `kill` or a service manager: the same clean stop as Ctrl-C
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    err_console.print(f"worker ({', '.join(taken)}) for {get_settings().home} (Ctrl-C stops it)", highlight=False)
    try:
        fg.run(idle_exit_s=idle_exit)
    except KeyboardInterrupt:
        err_console.print("[yellow]stopping; running work goes back to the queue[/]")
    finally:
        fg.stop()


def register(app: typer.Typer) -> None:
    """Add `worker` to the top-level app."""
    app.command("worker")(worker_cmd)
