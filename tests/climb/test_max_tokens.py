"""The climb sizes max_tokens with the model's tokenizer, so token-dense answers are not cut mid-JSON."""

from __future__ import annotations

import json

from ladder.climb.tasks import MAX_ANSWER_TOKENS, max_tokens_for, token_counter
from ladder.evals.testset import TestItem

DENSE = json.dumps({"address": "FLAT 4B, 221B BAKER ST, LONDON NW1 6XE", "code": "QX7-93ZK-0041", "ref": "A1B2C3D4E5"})


def _items(*refs: str) -> list[TestItem]:
    return [TestItem(messages=[{"role": "user", "content": f"q{i}"}], reference=r) for i, r in enumerate(refs)]


def test_a_token_dense_answer_gets_room_for_all_its_tokens(tiny_model):
    count = token_counter(tiny_model)
    tokens = count(DENSE)
    words = len(DENSE.split())
    assert tokens > words * 1.6 + 4  # the old sizing (words x 1.6) cut this answer short
    budget = max_tokens_for("extraction", _items('{"a": 1}', DENSE), count)
    assert tokens < budget <= MAX_ANSWER_TOKENS


def test_the_default_gguf_model_is_counted_without_loading_weights():
    from ladder.settings import get_settings

    count = token_counter(get_settings().default_model)  # llama.cpp's vocabulary only: fast, no weights
    assert count("card_arrival") >= 2 and count(DENSE) > len(DENSE.split()) * 1.6


def test_floors_and_cap():
    one = lambda text: 1  # noqa: E731
    assert max_tokens_for("classification", _items("a"), one) == 8
    assert max_tokens_for("open", _items("a"), one) == 64
    assert max_tokens_for("open", _items("x"), lambda text: 10_000) == MAX_ANSWER_TOKENS


def test_truncated_answers_are_counted_apart(tiny_model):
    from ladder.evals.runner import run_eval
    from ladder.pipelines.config import PipelineConfig
    from ladder.pipelines.pipeline import Pipeline

    # a random model given 2 tokens is cut off: the run says so instead of calling them only wrong
    run = run_eval(Pipeline(PipelineConfig(model=tiny_model, max_tokens=2)), _items("a", "b"), store=False)
    assert [r["truncated"] for r in run.rows] == [True, True] and run.truncated == 2
    from ladder.climb.report import write_eval_report

    report = write_eval_report(run)
    assert "2/2 cut at max_tokens" in (report / "report.md").read_text()
