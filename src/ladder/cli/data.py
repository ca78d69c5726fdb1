"""CLI for datasets: `ladder data validate | split | stats | label | calibrate`."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from ladder.cli.console import console, err_console, progress_bar

data_app = typer.Typer(help="Check, split, inspect and label training data.", no_args_is_help=True)

InputCol = typer.Option(None, "--input-col", help="Column (CSV) or field (JSONL) holding the input.")
OutputCol = typer.Option(None, "--output-col", help="Column or field holding the expected output.")
System = typer.Option(None, "--system", help="System prompt added to examples that have none.")


@data_app.command("validate")
def validate_cmd(
    file: Path = typer.Argument(..., help="Chat JSONL, prompt/completion JSONL, or CSV/JSONL."),
    model: str = typer.Option(None, "--model", "-m", help="Count tokens with this model's tokenizer."),
    task: str = typer.Option(None, "--task", help="classification|extraction|style|knowledge|open"),
    test: Path = typer.Option(None, "--test", help="A test file to check for overlap (leakage)."),
    input_col: str = InputCol,
    output_col: str = OutputCol,
    system: str = System,
    max_length: int = typer.Option(None, "--max-length", help="Training sequence length in tokens."),
    epochs: int = typer.Option(None, "--epochs", help="Epochs for the time estimate (default: auto)."),
    no_tokens: bool = typer.Option(False, "--no-tokens", help="Skip token counting (no tokenizer load)."),
    all_warnings: bool = typer.Option(False, "--all", help="List every warning, not a few per kind."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Check a dataset against OpenAI's rules and report every problem with its line number.

    Exit code 1 when there are errors (warnings alone exit 0).
    """
    from ladder.data.render import render_report
    from ladder.data.validate import validate

    report = validate(
        file,
        model=model,
        task=task,
        test_path=test,
        input_col=input_col,
        output_col=output_col,
        system=system,
        max_length=max_length,
        epochs=epochs,
        count=not no_tokens,
    )
    if as_json:
        typer.echo(json.dumps(report.as_dict(), indent=1))
    else:
        console.print(render_report(report, all_warnings=all_warnings))
    if not report.ok:
        raise typer.Exit(1)


@data_app.command("split")
def split_cmd(
    file: Path = typer.Argument(..., help="The dataset to split."),
    test: float = typer.Option(0.2, "--test", help="Test share (0.2) or number of test examples (500)."),
    stratify: bool = typer.Option(False, "--stratify", help="Same label shares on both sides."),
    seed: int = typer.Option(0, "--seed", help="The same seed always gives the same split."),
    out_dir: Path = typer.Option(None, "--out-dir", help="Where to write (default: next to FILE)."),
    input_col: str = InputCol,
    output_col: str = OutputCol,
    system: str = System,
) -> None:
    """Write FILE.train.jsonl and FILE.test.jsonl (chat form), deterministically."""
    from ladder.data.formats import read_dataset
    from ladder.data.split import split

    train, held = split(
        file,
        test=test,
        stratify=stratify,
        seed=seed,
        out_dir=out_dir,
        input_col=input_col,
        output_col=output_col,
        system=system,
    )
    n_train, n_test = (len(read_dataset(p)) for p in (train, held))
    typer.echo(f"train: {train} ({n_train} examples)\ntest:  {held} ({n_test} examples)")


@data_app.command("stats")
def stats_cmd(
    file: Path = typer.Argument(..., help="The dataset."),
    model: str = typer.Option(None, "--model", "-m", help="Also count tokens with this model's tokenizer."),
    input_col: str = InputCol,
    output_col: str = OutputCol,
    system: str = System,
    as_json: bool = typer.Option(False, "--json", help="Print as JSON."),
) -> None:
    """Sizes, roles, lengths and the label distribution of a dataset."""
    from rich.table import Table

    from ladder.data.render import render_labels
    from ladder.data.stats import stats

    s = stats(file, input_col=input_col, output_col=output_col, system=system, model=model)
    if as_json:
        typer.echo(json.dumps(s, indent=1))
        return
    table = Table(show_header=False, title=str(file), title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    table.add_row("examples", str(s["examples"]))
    table.add_row("messages", f"{s['messages']} ({', '.join(f'{k} {v}' for k, v in s['roles'].items())})")
    table.add_row("multi-turn examples", str(s["multi_turn_examples"]))
    table.add_row("distinct system prompts", str(s["distinct_system_prompts"]))
    for role, w in s["words_by_role"].items():
        table.add_row(f"words / {role} message", f"min {w['min']}, median {w['median']}, max {w['max']}")
    if "tokens" in s:
        t = s["tokens"]["per_example"]
        table.add_row(
            "tokens / example",
            f"min {t['min']}, median {t['median']}, max {t['max']} "
            f"({s['tokens']['tokenizer']}); total {s['tokens']['total']:,}",
        )
    console.print(table)
    if s["labels"]:
        console.print(render_labels(s["labels"]))


@data_app.command("label")
def label_cmd(
    inputs: Path = typer.Argument(
        ..., help="Inputs: a .txt (one per line), CSV/JSONL with an input column, or chat JSONL."
    ),
    teacher: str = typer.Option(..., "--teacher", "-t", help="The answering model (any registered)."),
    out: Path = typer.Option(..., "--out", "-o", help="Chat JSONL to append to; re-running resumes."),
    system: str = System,
    input_col: str = InputCol,
    max_tokens: int = typer.Option(256, "--max-tokens", help="Longest answer in tokens."),
    batch_size: int = typer.Option(8, "--batch-size", help="Inputs sent to the teacher at once."),
    temperature: float = typer.Option(0.0, "--temperature", help="Teacher sampling temperature."),
    keep_truncated: bool = typer.Option(False, "--keep-truncated", help="Also write answers cut at --max-tokens."),
) -> None:
    """Turn inputs into training examples with a teacher model (distillation), resumably."""
    from ladder.data.label import label

    with progress_bar(f"labelling with {teacher}", None) as advance:
        state = {"done": 0}

        def on_progress(done: int, total: int) -> None:
            advance(done - state["done"], total=total)
            state["done"] = done

        result = label(
            inputs,
            teacher,
            out,
            system=system,
            input_col=input_col,
            on_progress=on_progress,
            batch_size=batch_size,
            max_tokens=max_tokens,
            temperature=temperature,
            keep_truncated=keep_truncated,
        )
    typer.echo(
        f"{result.written} new examples written to {result.out} ({result.skipped} already there"
        + (f", {result.empty} empty answers left for a re-run" if result.empty else "")
        + (
            f", {result.truncated} answers cut at --max-tokens {max_tokens} left out: re-run with more"
            if result.truncated
            else ""
        )
        + ")"
    )


@data_app.command("calibrate")
def calibrate_cmd(
    model: str = typer.Option(None, "--model", "-m", help="The model to measure (default model if unset)."),
    steps: int = typer.Option(6, "--steps", help="Timed LoRA steps (after one warm-up step)."),
) -> None:
    """Measure LoRA training tokens/s on this machine; `data validate` then uses it for time estimates."""
    from ladder.data.calibrate import calibrate

    with err_console.status("measuring LoRA training speed..."):
        r = calibrate(model, steps=steps, save=True)
    console.print(
        f"{r['model']} on {r['device']}: {r['tokens_per_second']:,.0f} tokens/s "
        f"({r['tokens']} tokens in {r['seconds']:.1f} s); saved for time estimates",
        highlight=False,
    )


def register(app: typer.Typer) -> None:
    """Add this area's commands to the top-level app."""
    app.add_typer(data_app, name="data")
