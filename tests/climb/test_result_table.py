"""The ladder table on the terminal: every number readable at 80 columns, all of them when wide."""

from __future__ import annotations

import pytest
from rich.console import Console

from ladder.climb.recommend import recommend
from ladder.climb.runner import RungResult, parse_target
from tests.climb.test_recommend_report import _result, _run


def _printed(monkeypatch, width: int) -> str:
    from ladder.cli import climb as cli

    rungs = [
        RungResult("prompt", "prompt", run=_run("prompt", [True] * 60 + [False] * 40, 0.01)),
        RungResult("few-shot retrieved k=4", "few-shot", run=_run("few", [True] * 71 + [False] * 29, 0.05)),
        RungResult(
            "fine-tune",
            "fine-tune",
            run=_run("ft", [True] * 95 + [False] * 5, 0.005),
            setup={"cost_usd": 0.2, "seconds": 60},
        ),
    ]
    result = _result(rungs, parse_target("accuracy=0.9"))
    result.recommendation = recommend(result)
    result.report_dir = "/tmp/report"
    console = Console(width=width, record=True, force_terminal=False)
    monkeypatch.setattr(cli, "console", console)
    cli.print_result(result)
    return console.export_text()


@pytest.mark.parametrize("width", [80, 100])
def test_at_narrow_widths_names_and_numbers_stay_whole(monkeypatch, width):
    out = _printed(monkeypatch, width)
    assert max(len(line) for line in out.splitlines()) <= width
    for whole in ("few-shot retrieved k=4", "0.950 (0.850-1.050)", "0.710 (0.610-0.810)", "100%"):
        assert whole in out, whole
    assert "…" not in out
    # what the narrow table leaves out is printed under it
    assert "fine-tune: set-up 1.0 min" in out and "RECOMMENDED" in out


def test_a_wide_terminal_gets_every_column(monkeypatch):
    out = _printed(monkeypatch, 200)
    for column in ("constrained", "p95 ms", "set-up", "note"):
        assert column in out
