"""The ladder table as plain rows: the same numbers for the terminal, Markdown and HTML."""

from __future__ import annotations

COLUMNS = (
    "rung",
    "{metric} (95% CI)",
    "format",
    "constrained",
    "ECE",
    "p50 ms",
    "p95 ms",
    "$/1k req",
    "set-up",
    "note",
)


def setup_text(setup: dict) -> str:
    if not setup or not setup.get("seconds"):
        return "-"
    return (
        f"{setup['seconds'] / 60:.1f} min, {int(setup.get('trained_tokens') or 0):,} tok, "
        f"${float(setup.get('cost_usd') or 0):.4f}"
    )


def constrained_text(config) -> str:
    """yes: decoded under the output format; no: free decoding, the format only checked afterwards."""
    return "-" if config is None else ("yes" if config.is_constrained else "no")


def rows(result) -> tuple[list[str], list[list[str]]]:
    metric = result.headline
    header = [c.format(metric=metric) for c in COLUMNS]
    out = []
    for r in result.rungs:
        if r.run is None:
            out.append([r.name] + ["-"] * 7 + [setup_text(r.setup), r.skipped or ""])
            continue
        run = r.run
        v = run.metrics.get(metric, run.value)
        note = []
        if result.target and r.met_target:
            note.append("meets target")
        if result.recommendation.get("rung") == r.name:
            note.append("RECOMMENDED")
        if run.cached:
            note.append(f"{run.cached}/{run.n} cached")
        if run.truncated:  # cut at max_tokens: a budget problem, not a wrong answer
            note.append(f"{run.truncated}/{run.n} cut at max_tokens")
        for metric_name, n in run.missing.items():
            if n:
                note.append(f"{n}/{run.n} {metric_name} grades missing")
        out.append(
            [
                r.name,
                f"{v:.3f} ({run.ci[0]:.3f}-{run.ci[1]:.3f})",
                f"{run.format_compliance:.0%}",
                constrained_text(r.config),
                f"{run.calibration['ece']:.3f}" if run.calibration else "-",
                f"{run.p50_ms:.0f}",
                f"{run.p95_ms:.0f}",
                f"{run.cost_per_1k:.4f}",
                setup_text(r.setup),
                ", ".join(note),
            ]
        )
    return header, out


def markdown(header: list[str], body: list[list[str]]) -> str:
    esc = [[c.replace("|", "\\|") for c in row] for row in body]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in esc]
    return "\n".join(lines)
