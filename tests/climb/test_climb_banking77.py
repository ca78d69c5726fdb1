"""Integration: the ladder on real data (BANKING77, a subset of intents), real SmolLM2 and MiniLM."""

import pytest

from ladder.climb.runner import ClimbOptions, climb, parse_target
from ladder.evals.testset import read_test_set
from tests.conftest import needs_datasets

INTENTS = ["card_arrival", "exchange_rate", "lost_or_stolen_card", "pin_blocked"]


@pytest.mark.slow
def test_climb_on_banking77_subset(monkeypatch):
    monkeypatch.setenv("LADDER_THREADS", "1")  # shared cores: one thread avoids oversubscription stalls
    train_csv = needs_datasets("banking77", "train.csv")
    test_csv = needs_datasets("banking77", "test.csv")
    train = [t for t in read_test_set(train_csv) if t.reference in INTENTS][::8]
    test = [t for t in read_test_set(test_csv) if t.reference in INTENTS][::10]
    assert len(set(t.reference for t in test)) == len(INTENTS)
    result = climb(train, test, ClimbOptions(target=parse_target("accuracy=0.99"), shots=4, latency_sample=2))
    names = [r.name for r in result.rungs]
    assert names == ["prompt", "few-shot fixed k=4", "few-shot retrieved k=4", "fine-tune"]
    assert result.task == "classification" and result.labels == sorted(INTENTS)
    # Below the classification minimum (200) the ladder refuses to fine-tune unless forced.
    assert "below the classification minimum" in result.rungs[-1].skipped
    for r in result.rungs[:-1]:
        lo, hi = r.run.ci
        assert 0 <= lo <= r.run.value <= hi <= 1 and r.run.n == len(test)
        assert r.run.cost_per_1k > 0 and r.run.p95_ms >= r.run.p50_ms > 0
    assert result.recommendation["rung"] in names[:-1]
    assert result.report_dir and (__import__("pathlib").Path(result.report_dir) / "report.html").exists()
