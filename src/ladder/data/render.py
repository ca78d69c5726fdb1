"""Rich rendering of a validation report and of dataset stats for the terminal."""

from __future__ import annotations

from collections import defaultdict

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from ladder.data.formats import Problem
from ladder.data.validate import ValidationReport

WARNINGS_PER_KIND = 10


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _problem(p: Problem) -> Text:
    t = Text()
    t.append(
        "error  " if p.severity == "error" else "warning  ", style="bold red" if p.severity == "error" else "yellow"
    )
    t.append(f"line {p.line}" if p.line else "file", style="bold")
    if p.field:
        t.append(f" {p.field}", style="cyan")
    t.append(f": {p.message}")
    if p.hint:
        t.append(f"  -> {p.hint}", style="dim")
    return t


def render_problems(report: ValidationReport, *, all_warnings: bool = False) -> list[RenderableType]:
    """Every error; warnings grouped by kind, the first few of each unless all_warnings."""
    out: list[RenderableType] = [_problem(p) for p in report.errors]
    groups: dict[str, list[Problem]] = defaultdict(list)
    for p in report.warnings:
        groups[p.code or p.message].append(p)
    for items in groups.values():
        shown = items if all_warnings else items[:WARNINGS_PER_KIND]
        out += [_problem(p) for p in shown]
        if len(items) > len(shown):
            out.append(Text(f"  ... and {len(items) - len(shown)} more like this (--all to list them)", style="dim"))
    return out


def render_report(report: ValidationReport, *, all_warnings: bool = False) -> RenderableType:
    parts = render_problems(report, all_warnings=all_warnings)
    table = Table(title=f"{report.path}", show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    status = "[green]ok[/]" if report.ok else f"[red]{len(report.errors)} errors[/]"
    table.add_row("result", f"{status}, {len(report.warnings)} warnings")
    table.add_row("examples", f"{report.n_examples}")
    if report.task:
        how = " (inferred from the outputs; pass --task)" if report.task_inferred else ""
        table.add_row("task", f"{report.task}{how}: minimum {report.minimum}, ideal {report.ideal}")
    if report.tokens:
        toks = sorted(report.tokens)
        table.add_row(
            "tokens / example", f"min {toks[0]}, median {toks[len(toks) // 2]}, max {toks[-1]}  ({report.tokenizer})"
        )
        table.add_row("over max length", f"{len(report.over_length)} (max {report.max_length} tokens)")
    table.add_row("exact duplicates", str(len(report.duplicates)))
    table.add_row("near duplicates", str(len(report.near_duplicates)))
    if report.conflicts:
        table.add_row("conflicting answers", str(len(report.conflicts)))
    if report.test_path:
        table.add_row("leakage into test", f"{len(report.leakage)} examples ({report.test_path})")
    if report.labels:
        top = ", ".join(f"{k} {v}" for k, v in list(report.labels.items())[:5])
        table.add_row(
            "labels", f"{len(report.labels)} distinct; most common: {top}" + (", ..." if len(report.labels) > 5 else "")
        )
    if report.epochs:
        table.add_row(
            "tokens per epoch",
            f"{report.tokens_per_epoch:,} ({report.trained_tokens_per_epoch:,} assistant tokens with loss)",
        )
        table.add_row(
            "estimated training",
            f"{report.epochs} epochs x {report.tokens_per_epoch:,} tokens "
            f"at {report.tokens_per_second:,.0f} tokens/s = {_duration(report.estimated_seconds)}"
            f"  [dim]({report.speed_source})[/]",
        )
    if parts:
        parts.append(Text(""))
    return Group(*parts, table)


def render_labels(labels: dict[str, int], limit: int = 30) -> Table:
    total = sum(labels.values())
    table = Table("label", "examples", "share", title=f"{len(labels)} labels")
    for k, v in list(labels.items())[:limit]:
        table.add_row(k, str(v), f"{v / total:.1%}")
    if len(labels) > limit:
        table.add_row(f"... {len(labels) - limit} more", "", "")
    return table
