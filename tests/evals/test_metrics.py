"""Metrics and intervals: known values, and intervals that behave like intervals."""

import numpy as np
import pytest

from ladder.evals import metrics as M


def test_accuracy_and_macro_f1_normalise_labels():
    refs = ["Card_Arrival", "pin blocked", "pin blocked", "exchange rate"]
    preds = ["card arrival", "PIN_BLOCKED", None, "pin blocked"]
    assert M.accuracy(preds, refs) == 0.5
    # card arrival F1 1.0; pin blocked tp1 fp1 fn1 -> 0.5; exchange rate 0.0
    assert M.macro_f1(preds, refs) == pytest.approx((1.0 + 0.5 + 0.0) / 3)


def test_field_precision_recall():
    counts = [
        M.field_counts({"name": "Ada", "city": "Paris", "x": "1"}, {"name": "ada", "city": "Rome"}),
        M.field_counts(None, {"name": "Bob"}),
    ]
    p, r, f = M.field_prf(counts)
    assert (p, r) == (pytest.approx(1 / 3), pytest.approx(1 / 3)) and f == pytest.approx(1 / 3)


def test_contains_matches_whole_words_only():
    assert M.contains("The answer is Paris.", "paris") == 1.0
    assert M.contains("Parisian food", "Paris") == 0.0
    assert M.contains("", "x") == 0.0


def test_rouge_l():
    assert M.rouge_l("the cat sat on the mat", "the cat sat on the mat") == 1.0
    assert M.rouge_l("cat mat", "the cat sat on the mat") == pytest.approx(2 * (1 * 2 / 6) / (1 + 2 / 6))
    assert M.rouge_l("dog", "cat") == 0.0


def test_bootstrap_interval_covers_mean_and_narrows_with_data():
    rng = np.random.default_rng(1)
    small = rng.random(20) < 0.7
    big = rng.random(2000) < 0.7
    lo_s, hi_s = M.mean_ci(small)
    lo_b, hi_b = M.mean_ci(big)
    assert lo_s <= small.mean() <= hi_s and lo_b <= big.mean() <= hi_b
    assert hi_b - lo_b < (hi_s - lo_s) / 3
    assert M.mean_ci(small) == M.mean_ci(small)  # seeded: reproducible


def test_paired_bootstrap_tells_noise_from_gain():
    a = [1.0, 0.0] * 50
    same = [0.0, 1.0] * 50
    better = [1.0] * 100
    assert not M.paired_bootstrap(a, same)["significant"]
    d = M.paired_bootstrap(a, better)
    assert d["significant"] and d["diff"] == pytest.approx(0.5) and d["lo"] > 0
    with pytest.raises(ValueError):
        M.paired_bootstrap([1.0], [1.0, 0.0])
