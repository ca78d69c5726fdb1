"""`ladder eval PIPELINE TEST.jsonl`: score a bot (or a model) on a test set, store the run, write a report."""

from __future__ import annotations

from pathlib import Path

import typer

from ladder.cli.console import console, progress_bar


def _pipeline(ref: str):
    """A bot name (`name` or `name@3`), or `model:<name>` for a bare model with no prompt."""
    from ladder.pipelines import service
    from ladder.pipelines.config import PipelineConfig
    from ladder.pipelines.pipeline import Pipeline

    if ref.startswith("model:"):
        return Pipeline(PipelineConfig(model=ref[len("model:") :]))
    return service.get_bot(ref)


def eval_cmd(
    pipeline: str = typer.Argument(..., help="Bot name (name@VERSION for a past one) or model:NAME."),
    test: Path = typer.Argument(
        ..., help="Test set: chat JSONL (last assistant = reference), or input/expected columns (JSONL or CSV)."
    ),
    metric: list[str] = typer.Option(None, "--metric", help="Metric (repeat); the first is the headline."),
    input_col: str = typer.Option(None, help="CSV/JSONL input column."),
    output_col: str = typer.Option(None, help="CSV/JSONL expected column."),
    limit: int = typer.Option(None, help="Only the first N items."),
    batch_size: int = typer.Option(16, help="Items per forward pass on a local model."),
    judge: str = typer.Option(None, help="Registered model to use as LLM judge."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Generate again even if cached."),
    latency_sample: int = typer.Option(8, help="Requests timed one at a time for p50/p95."),
) -> None:
    """Evaluate a pipeline on a test set."""
    from rich.table import Table

    from ladder.climb.report import write_eval_report
    from ladder.evals.runner import run_eval
    from ladder.evals.store import set_report_dir
    from ladder.evals.testset import read_test_set

    pipe = _pipeline(pipeline)
    items = read_test_set(test, input_col=input_col, output_col=output_col, limit=limit)
    with progress_bar(f"eval {pipe.label}", len(items)) as advance:
        run = run_eval(
            pipe,
            items,
            metrics=metric or None,
            batch_size=batch_size,
            use_cache=not no_cache,
            latency_sample=latency_sample,
            judge_model=judge,
            test_set=str(test),
            on_progress=lambda n: advance(n),
        )
    t = Table("metric", "value", title=f"{run.id}: {run.pipeline} on {run.n} items")
    lo, hi = run.ci
    for name, value in run.metrics.items():
        t.add_row(name, f"{value:.3f}" + (f"  (95% CI {lo:.3f}-{hi:.3f})" if name == run.headline else ""))
    t.add_row("p50 / p95 latency", f"{run.p50_ms:.0f} / {run.p95_ms:.0f} ms ({run.latency_basis})")
    t.add_row("tokens in / out per request", f"{run.prompt_tokens:.0f} / {run.completion_tokens:.1f}")
    t.add_row("cost per 1,000 requests", f"${run.cost_per_1k:.4f}")
    t.add_row("cached", f"{run.cached}/{run.n}")
    t.add_row("cut at max_tokens", f"{run.truncated}/{run.n}")
    for name, n in run.missing.items():  # e.g. judge replies with no readable grade: left out of the mean
        t.add_row(f"{name} grades missing", f"{n}/{run.n}")
    console.print(t)
    report = write_eval_report(run)
    set_report_dir(run.id, str(report))
    console.print(f"report: {report / 'report.html'}")


def list_cmd(limit: int = typer.Option(20)) -> None:
    """List stored eval runs, newest first."""
    from rich.table import Table

    from ladder.evals.store import list_runs

    t = Table("id", "pipeline", "items", "headline", "value (95% CI)", "report")
    for r in list_runs(limit=limit):
        t.add_row(
            r["id"],
            r["pipeline"],
            str(r["n"]),
            r["headline"],
            f"{r['value']:.3f} ({r['ci'][0]:.3f}-{r['ci'][1]:.3f})",
            r["report_dir"] or "-",
        )
    console.print(t)


def register(app: typer.Typer) -> None:
    """Add `ladder eval` and `ladder evals list`."""
    app.command("eval")(eval_cmd)
    sub = typer.Typer(help="Stored eval runs.", no_args_is_help=True)
    sub.command("list")(list_cmd)
    app.add_typer(sub, name="evals")
