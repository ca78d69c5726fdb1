"""`ladder worker`: run the fine-tuning queue in the foreground, restarting the training worker if it dies."""

from __future__ import annotations

import signal

import typer

from ladder.cli.console import err_console


def worker_cmd(
    idle_exit: float = typer.Option(
        None, "--idle-exit", help="Exit after SECONDS with no job queued or running (default: run until stopped)."
    ),
    interval: float = typer.Option(1.0, "--interval", help="Seconds between checks of the queue."),
) -> None:
    """Process fine-tuning jobs of every project: keeps one worker alive while jobs are queued."""
    from ladder.settings import get_settings
    from ladder.store.sweep import sweep_at_start
    from ladder.tuning.supervisor import Supervisor

    sweep_at_start()  # what a crash of this or another ladder process left in the data dir
    sup = Supervisor(interval_s=interval)

    def on_term(signum, frame) -> None:  # `kill` or a service manager: the same clean stop as Ctrl-C
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    err_console.print(f"tuning supervisor for {get_settings().home} (Ctrl-C stops it)", highlight=False)
    try:
        sup.run(idle_exit_s=idle_exit)
    except KeyboardInterrupt:
        err_console.print("[yellow]stopping; a running job goes back to the queue[/]")
    finally:
        sup.stop()


def register(app: typer.Typer) -> None:
    """Add `worker` to the top-level app."""
    app.command("worker")(worker_cmd)
