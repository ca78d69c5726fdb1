"""Eval runs: per-item records, run summary, storage, cache, and test sets with line-numbered errors."""

import json

import pytest

from ladder.data.formats import DatasetError
from ladder.evals.runner import run_eval
from ladder.evals.store import get_run, list_runs
from ladder.evals.testset import read_test_set
from ladder.pipelines import service


def _write(path, rows):
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path


def test_test_set_formats(tmp_path):
    chat = _write(
        tmp_path / "a.jsonl",
        [
            {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "greeting"}]},
            {"input": "bye", "expected": "farewell", "source": "docs/a.md"},
        ],
    )
    items = read_test_set(chat)
    assert [(i.input, i.reference) for i in items] == [("hi", "greeting"), ("bye", "farewell")]
    assert items[1].sources == ["docs/a.md"] and items[1].line == 2
    csv = tmp_path / "b.csv"
    csv.write_text("text,category\nwhere is my card,card_arrival\n")
    assert read_test_set(csv)[0].reference == "card_arrival"
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"input": "x", "expected": "y"}\n{oops\n')
    with pytest.raises(DatasetError, match="line 2"):
        read_test_set(bad)


def test_run_is_scored_stored_and_cached(tiny_model, tmp_path):
    bot = service.create_bot(
        "t",
        {"model": tiny_model, "parser": {"kind": "label", "labels": ["a", "b"]}, "max_tokens": 3, "backend": "torch"},
    )
    items = read_test_set(
        _write(tmp_path / "t.jsonl", [{"input": f"item {i}", "expected": "ab"[i % 2]} for i in range(6)])
    )
    run = run_eval(bot, items, batch_size=4, latency_sample=2)
    assert run.id.startswith("eval-") and run.n == 6 and run.headline == "accuracy"
    assert set(run.metrics) == {"accuracy", "macro_f1", "format"}
    assert run.ci[0] <= run.value <= run.ci[1]
    assert run.p95_ms >= run.p50_ms > 0 and run.prompt_tokens > 0 and run.cost_per_1k > 0
    row = run.rows[0]
    assert {"output", "parsed", "passed", "latency_ms", "prompt_tokens", "completion_tokens"} <= set(row)
    stored = get_run(run.id)
    assert len(stored["items"]) == 6 and stored["value"] == run.value
    assert list_runs()[0]["id"] == run.id
    again = run_eval(bot, items, batch_size=4, latency_sample=2)
    assert again.cached == 6 and [r["output"] for r in again.rows] == [r["output"] for r in run.rows]


def test_llm_judge_scores_every_item(tiny_model, tmp_path):
    bot = service.create_bot("t", {"model": tiny_model, "max_tokens": 2, "backend": "torch"})
    items = read_test_set(
        _write(tmp_path / "t.jsonl", [{"input": "x", "expected": "y"}, {"input": "z", "expected": "w"}])
    )
    run = run_eval(bot, items, judge_model=tiny_model, latency_sample=0)
    # a random model rarely writes a digit: an ungraded item is missing (None), not a 0
    assert run.headline == "judge" and all(r["judge"] is None or 0.0 <= r["judge"] <= 1.0 for r in run.rows)
    assert run.missing == {"judge": sum(r["judge"] is None for r in run.rows)}


def test_metric_names_are_checked(tiny_model, tmp_path):
    from ladder.errors import InvalidInput

    bot = service.create_bot("t", {"model": tiny_model, "max_tokens": 2, "backend": "torch"})
    items = read_test_set(_write(tmp_path / "t.jsonl", [{"input": "x", "expected": "y"}]))
    with pytest.raises(InvalidInput, match="unknown metric"):
        run_eval(bot, items, metrics=["acuracy"])
    run = run_eval(bot, items, metrics=["exact_match", "rouge_l"], latency_sample=0)
    assert run.headline == "exact_match" and set(run.metrics) == {"exact_match", "rouge_l"}
