"""Calibration of label probabilities: ECE on known values, the coverage curve, and eval runs that store them."""

from __future__ import annotations

import json

import pytest

from ladder.evals.metrics import calibration, coverage_curve, expected_calibration_error, reliability_bins
from ladder.evals.runner import run_eval
from ladder.evals.store import get_run
from ladder.evals.testset import TestItem as Item
from ladder.pipelines.config import PipelineConfig
from ladder.pipelines.pipeline import Pipeline


def test_ece_of_known_bins():
    # Bin [0.9, 1.0]: confidence 0.95 twice, 1 of 2 right -> |0.5 - 0.95| = 0.45 on half the items.
    # Bin [0.6, 0.7): confidence 0.65 twice, both right -> |1.0 - 0.65| = 0.35 on the other half.
    conf, ok = [0.95, 0.95, 0.65, 0.65], [1, 0, 1, 1]
    assert expected_calibration_error(conf, ok) == pytest.approx(0.5 * 0.45 + 0.5 * 0.35)


def test_a_perfectly_calibrated_set_has_zero_ece_and_one_is_in_the_last_bin():
    conf = [0.25] * 4 + [1.0] * 3
    ok = [1, 0, 0, 0] + [1, 1, 1]
    assert expected_calibration_error(conf, ok) == pytest.approx(0.0)
    bins = reliability_bins(conf, ok)
    assert len(bins) == 10 and bins[9]["n"] == 3 and bins[2]["n"] == 4 and bins[0]["accuracy"] is None
    assert expected_calibration_error([], []) == 0.0


def test_coverage_curve_answers_only_confident_items():
    conf = [0.9, 0.8, 0.55, 0.4, 0.3]
    ok = [1, 1, 0, 1, 0]
    by_t = {p["threshold"]: p for p in coverage_curve(conf, ok, thresholds=[0.0, 0.5, 0.85, 0.95])}
    assert by_t[0.0] == {"threshold": 0.0, "coverage": 1.0, "accuracy": 0.6, "answered": 5}
    assert by_t[0.5]["coverage"] == pytest.approx(0.6) and by_t[0.5]["accuracy"] == pytest.approx(2 / 3)
    assert by_t[0.85] == {"threshold": 0.85, "coverage": 0.2, "accuracy": 1.0, "answered": 1}
    assert by_t[0.95]["answered"] == 0 and by_t[0.95]["accuracy"] is None


def test_calibration_judges_the_most_probable_label_and_skips_items_without_probs():
    probs = [{"a": 0.7, "b": 0.3}, {"a": 0.2, "b": 0.8}, None]
    c = calibration(probs, ["a", "a", "b"])
    assert c["n"] == 2
    # 0.7 right, 0.8 wrong: bins [0.7,0.8) and [0.8,0.9) -> 0.5*0.3 + 0.5*0.8
    assert c["ece"] == pytest.approx(0.55)
    assert calibration([None], ["a"]) is None


def test_an_eval_run_stores_each_items_probs_and_the_calibration(tiny_model):
    labels = ["billing", "card arrival", "refund"]
    pipe = Pipeline(PipelineConfig(model=tiny_model, parser={"kind": "label", "labels": labels}, max_tokens=4))
    items = [Item([{"role": "user", "content": f"question {i}"}], labels[i % 3]) for i in range(6)]
    run = run_eval(pipe, items, batch_size=3, latency_sample=0)
    assert run.calibration["n"] == 6 and 0.0 <= run.calibration["ece"] <= 1.0
    assert len(run.calibration["coverage"]) == 20
    stored = get_run(run.id)
    assert stored["calibration"]["ece"] == pytest.approx(run.calibration["ece"])
    for item in stored["items"]:
        probs = json.loads(item["extra"])["label_probs"]
        assert set(probs) == set(labels) and abs(sum(probs.values()) - 1) < 1e-4
