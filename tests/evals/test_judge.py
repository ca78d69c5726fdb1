"""The LLM judge: an unreadable grade is missing (left out of the mean and counted), never a 0."""

from __future__ import annotations

import json

import pytest

from ladder.evals import scoring
from ladder.evals.judge import grade, missing
from tests.ui.scripted import build_scripted_model


def test_grade_reads_a_standalone_digit_or_nothing():
    assert grade("4") == 0.75 and grade("Score: 5/5") == 1.0 and grade(" 1") == 0.0
    assert grade("I cannot grade this.") is None and grade("") is None and grade("10") is None


def test_missing_grades_are_left_out_of_the_mean_and_counted():
    rows = [{"judge": 1.0, "valid": True}, {"judge": None, "valid": True}, {"judge": 0.5, "valid": True}]
    assert scoring.score_run(["judge"], rows, None)["judge"] == pytest.approx(0.75)  # not (1 + 0 + .5) / 3
    assert scoring.passes("judge", rows) == [True, False, False]
    lo, hi = scoring.headline_ci("judge", rows, None, rounds=200)
    assert lo <= 0.75 <= hi <= 1.0
    assert missing(rows) == 1 and missing([{"judge": 0.0}]) == 0


@pytest.fixture(scope="module")
def judges(tmp_path_factory, smol_tokenizer_dir):
    root = tmp_path_factory.mktemp("judges")
    return {
        "judge-four": build_scripted_model(smol_tokenizer_dir, root / "four", "4"),
        "judge-mute": build_scripted_model(smol_tokenizer_dir, root / "mute", "No idea."),
    }


def test_an_eval_reports_how_many_grades_were_missing(judges, tiny_model, tmp_path):
    from ladder.evals.runner import run_eval
    from ladder.evals.store import get_run
    from ladder.evals.testset import read_test_set
    from ladder.models import registry
    from ladder.pipelines import service

    for name, path in judges.items():
        registry.add_local(name, path)
    bot = service.create_bot("t", {"model": tiny_model, "max_tokens": 2, "backend": "torch"})
    path = tmp_path / "t.jsonl"
    path.write_text("".join(json.dumps({"input": f"q{i}", "expected": "a"}) + "\n" for i in range(3)))
    items = read_test_set(path)
    graded = run_eval(bot, items, judge_model="judge-four", latency_sample=0)
    assert graded.value == pytest.approx(0.75) and graded.missing == {"judge": 0}
    mute = run_eval(bot, items, judge_model="judge-mute", latency_sample=0)
    assert [r["judge"] for r in mute.rows] == [None] * 3
    assert mute.missing == {"judge": 3} and get_run(mute.id)["missing"] == {"judge": 3}
    assert not any(r["passed"] for r in mute.rows)
