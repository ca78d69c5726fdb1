"""`ladder climb` (the ladder on one test set) and `ladder advise` (where to start)."""

from __future__ import annotations

import contextlib
from pathlib import Path

import typer

from ladder.cli.console import console, progress_bar

# Below this terminal width the ladder table drops the columns that are printed as lines under it.
WIDE_TABLE = 140
NARROW_DROPS = ("constrained", "p95 ms", "set-up", "note")


class ConsoleUI:
    """A climb's progress on the terminal: status lines and rich progress bars with ETA."""

    def say(self, text: str) -> None:
        console.print(text, highlight=False)

    @contextlib.contextmanager
    def bar(self, description: str, total: int | None):
        with progress_bar(description, total) as advance:
            yield advance


def print_advice(advice) -> None:
    console.rule("advisor")
    for line in advice.lines():
        console.print(line, highlight=False)


def print_result(result) -> None:
    from rich import box
    from rich.table import Table

    from ladder.climb import table as tbl

    header, body = tbl.rows(result)
    col = {name: i for i, name in enumerate(header)}
    title = f"ladder: {result.task}, {result.n_train} train / {result.n_test} test items"
    wide = console.width >= WIDE_TABLE
    # At 80 columns the ten columns wrap a digit a line: keep the numbers, print set-up and notes below.
    keep = [i for i, name in enumerate(header) if wide or name not in NARROW_DROPS]
    t = Table(*(header[i] for i in keep), title=title, box=box.HEAVY_HEAD if wide else None)
    t.columns[0].no_wrap = True
    for row in body:
        t.add_row(*(row[i] for i in keep), style="bold green" if "RECOMMENDED" in row[col["note"]] else None)
    console.print(t)
    if not wide:
        for row in body:
            setup, constrained, note = row[col["set-up"]], row[col["constrained"]], row[col["note"]]
            extra = [f"set-up {setup}" if setup != "-" else "", "free decoding" if constrained == "no" else "", note]
            if any(extra):
                console.print(f"  {row[0]}: " + "; ".join(e for e in extra if e), highlight=False)
        if all(row[col["constrained"]] in ("yes", "-") for row in body):
            console.print("  every rung decoded under its output format (constrained)", highlight=False)
    rec = result.recommendation
    console.print(f"[bold]Recommendation: {rec.get('rung')}[/]")
    for r in rec.get("reasons", []):
        console.print(f"  - {r}", highlight=False)
    if rec.get("steps"):
        console.print("What each step bought:")
        for s in rec["steps"]:
            console.print(f"  - {s['text']}", highlight=False)
    f = result.forgetting
    if f:
        word = "[bold red]CATASTROPHIC FORGETTING[/]" if f["catastrophic"] else "no significant forgetting"
        console.print(
            f"Regression check ({f['n']} general questions, {f['metric']}): base {f['base']:.3f} -> "
            f"tuned {f['tuned']:.3f}: {word}"
        )
    console.print(f"report: {Path(result.report_dir) / 'report.html'}")


def climb_cmd(
    train: Path = typer.Option(..., help="Training set (chat JSONL, or input/expected columns)."),
    test: Path = typer.Option(..., help="Held-out test set, same formats."),
    task: str = typer.Option(
        None, help="classification | extraction | style | knowledge | open (default: inferred from the answers)."
    ),
    kb: list[str] = typer.Option(None, "--kb", help="Knowledge base for the RAG rungs (repeat)."),
    target: str = typer.Option(None, help="Stop at the first rung meeting METRIC=VALUE, e.g. accuracy=0.8."),
    model: str = typer.Option(None, help="Base model (default: the default model)."),
    all_rungs: bool = typer.Option(False, "--all", help="Climb every rung even after the target."),
    force_tune: bool = typer.Option(False, help="Fine-tune even below the task's data minimum."),
    shots: int = typer.Option(4, help="k for the few-shot rungs."),
    epochs: int = typer.Option(None, help="Fine-tune epochs (default: the service's auto)."),
    test_limit: int = typer.Option(None, help="Use N test items spread evenly over the file."),
    input_col: str = typer.Option(None),
    output_col: str = typer.Option(None),
    batch_size: int = typer.Option(16, help="Eval items per forward pass."),
    no_regression: bool = typer.Option(False, help="Skip the forgetting check of a tuned model."),
    free: bool = typer.Option(
        False, "--free", help="Decode every rung freely (no label-set/schema constraint), to see what it buys."
    ),
) -> None:
    """Climb the ladder: prompt -> few-shot -> RAG -> fine-tune, all on one test set; recommend a rung."""
    from ladder.climb.advisor import Answers, advise
    from ladder.climb.runner import ClimbOptions, climb, parse_target
    from ladder.climb.tasks import check_task, infer_task
    from ladder.evals.testset import read_test_set, spread

    cols = {"input_col": input_col, "output_col": output_col}
    train_items = read_test_set(train, **cols)
    test_items = spread(read_test_set(test, **cols), test_limit)
    kind = check_task(task) if task else infer_task(train_items)
    print_advice(advise(Answers(task=kind, knowledge_external=bool(kb), examples=len(train_items))))
    hp = {"n_epochs": epochs} if epochs else None
    opts = ClimbOptions(
        task=kind,
        kbs=list(kb or []),
        target=parse_target(target),
        model=model,
        all=all_rungs,
        force_tune=force_tune,
        shots=shots,
        hyperparameters=hp,
        batch_size=batch_size,
        regression=not no_regression,
        constrained=not free,
    )
    console.rule("climb")
    print_result(climb(train_items, test_items, opts, ui=ConsoleUI()))


def _ask(flag, question: str) -> bool:
    return flag if flag is not None else typer.confirm(question, default=False)


def advise_cmd(
    task: str = typer.Option(None, help="classification | extraction | style | knowledge | open"),
    examples: int = typer.Option(None, help="How many labelled examples exist."),
    external_knowledge: bool = typer.Option(
        None, "--external-knowledge/--no-external-knowledge", help="Answers depend on your own documents."
    ),
    changing: bool = typer.Option(None, "--changing/--not-changing", help="That knowledge changes."),
    style: bool = typer.Option(None, "--style/--no-style", help="A strict format or house style."),
    low_latency: bool = typer.Option(None, "--low-latency/--any-latency"),
    low_cost: bool = typer.Option(None, "--low-cost/--any-cost"),
    narrow: bool = typer.Option(None, "--narrow/--general", help="One narrow task vs general chat."),
    explain: bool = typer.Option(None, "--explain/--no-explain", help="Answers must cite sources."),
) -> None:
    """Where to start on the ladder (asks what is not given as a flag)."""
    from ladder.climb.advisor import Answers, advise
    from ladder.climb.tasks import check_task

    task = check_task(
        task or typer.prompt("task type (classification/extraction/style/knowledge/open)", default="classification")
    )
    a = Answers(
        task=task,
        examples=examples
        if examples is not None
        else typer.prompt("how many labelled examples exist", type=int, default=0),
        knowledge_external=_ask(external_knowledge, "do answers depend on your own documents or facts?"),
        knowledge_changes=_ask(changing, "does that knowledge change over time?"),
        style_matters=_ask(style, "does a strict output format or house style matter?"),
        low_latency=_ask(low_latency, "is low latency needed?"),
        low_cost=_ask(low_cost, "is lower cost per request needed?"),
        narrow=narrow if narrow is not None else typer.confirm("is the task narrow (not general chat)?", default=True),
        explainability=_ask(explain, "must answers be explainable (cite sources)?"),
    )
    print_advice(advise(a))


def register(app: typer.Typer) -> None:
    """Add `ladder climb` and `ladder advise`."""
    app.command("climb")(climb_cmd)
    app.command("advise")(advise_cmd)
