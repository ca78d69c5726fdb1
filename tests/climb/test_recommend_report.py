"""Recommendation rules and the report directory, on runs built from known per-item outcomes."""

import base64
import re

from ladder.climb.advisor import Advice
from ladder.climb.recommend import recommend
from ladder.climb.report import write_report
from ladder.climb.runner import ClimbResult, RungResult, parse_target
from ladder.evals.runner import EvalRun

LABELS = ["a", "b"]


def _run(name, correct, cost, ci=None):
    rows = [
        {
            "idx": i,
            "input": f"q{i}",
            "reference": "a",
            "parsed": "a" if ok else "b",
            "output": "a" if ok else "b",
            "valid": True,
            "passed": ok,
            "latency_ms": 10.0,
            "prompt_tokens": 5,
            "completion_tokens": 1,
            "cached": False,
            "error": None,
        }
        for i, ok in enumerate(correct)
    ]
    v = sum(correct) / len(correct)
    return EvalRun(
        f"eval-{name}",
        name,
        "f",
        "m",
        len(rows),
        "accuracy",
        v,
        ci or (v - 0.1, v + 0.1),
        {"accuracy": v},
        1.0,
        10,
        20,
        "per item",
        5,
        1,
        cost,
        0,
        1.0,
        LABELS,
        rows,
    )


def _result(rungs, target=None):
    return ClimbResult(
        "climb-test", "classification", target, "accuracy", rungs, Advice("prompt"), LABELS, n_train=10, n_test=100
    )


def test_cheapest_rung_meeting_target_wins_and_noise_is_called_noise():
    base = [True] * 60 + [False] * 40
    noisy = [True] * 62 + [False] * 38
    tuned = [True] * 95 + [False] * 5
    rungs = [
        RungResult("prompt", "prompt", run=_run("prompt", base, 0.01)),
        RungResult("few-shot", "few-shot", run=_run("few", noisy, 0.05)),
        RungResult("fine-tune", "fine-tune", run=_run("ft", tuned, 0.005), setup={"cost_usd": 0.2, "seconds": 60}),
    ]
    rec = recommend(_result(rungs, parse_target("accuracy=90")))
    assert rec["rung"] == "fine-tune"
    assert "within noise" in rec["steps"][0]["text"] and "a real gain" in rec["steps"][1]["text"]
    rec = recommend(_result(rungs, parse_target("accuracy=0.6")), volume=1000)
    assert rec["rung"] == "prompt"  # at 1,000 requests the training cost is not earned back
    rec = recommend(_result(rungs, parse_target("accuracy=0.6")), volume=1_000_000)
    assert rec["rung"] == "fine-tune"  # at a million, the shorter prompt pays for the training


def test_without_target_a_cheaper_rung_within_noise_of_the_best_is_recommended():
    rungs = [
        RungResult("prompt", "prompt", run=_run("prompt", [True] * 62 + [False] * 38, 0.01)),
        RungResult("few-shot", "few-shot", run=_run("few", [True] * 64 + [False] * 36, 0.05)),
    ]
    rec = recommend(_result(rungs))
    assert rec["rung"] == "prompt" and any("within noise" in r for r in rec["reasons"])


def test_report_directory_has_markdown_and_self_contained_html():
    rungs = [
        RungResult("prompt", "prompt", run=_run("prompt", [True] * 6 + [False] * 4, 0.01)),
        RungResult("fine-tune", "fine-tune", skipped="not run: 10 training examples is below the minimum"),
    ]
    result = _result(rungs, parse_target("accuracy=0.5"))
    result.recommendation = recommend(result)
    result.loss = [(1, 2.0), (2, 1.5), (3, 1.2)]
    out = write_report(result)
    md = (out / "report.md").read_text()
    html = (out / "report.html").read_text()
    assert "| prompt | 0.600" in md and "below the minimum" in md and "Worst failures" in md
    imgs = re.findall(r'src="data:image/png;base64,([^"]+)"', html)
    assert len(imgs) == 5  # quality, latency, cost, loss, confusion
    assert base64.b64decode(imgs[0])[:8] == b"\x89PNG\r\n\x1a\n"
    assert "http" not in html.replace("http-equiv", "")  # nothing fetched from elsewhere
