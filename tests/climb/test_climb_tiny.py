"""The climb end to end on the tiny model: rungs, stop rule, data-minimum rule, stored climb, report."""

import json

from ladder.climb.runner import ClimbOptions, climb, parse_target
from ladder.evals.testset import items_from_pairs
from ladder.store.db import get_db


def _data():
    train = items_from_pairs(
        [
            (f"message number {i} about {'bills' if i % 2 else 'parcels'}", "billing" if i % 2 else "shipping")
            for i in range(12)
        ]
    )
    test = items_from_pairs(
        [
            ("my bill is wrong", "billing"),
            ("parcel late", "shipping"),
            ("charged twice", "billing"),
            ("where is my box", "shipping"),
        ]
    )
    return train, test


def test_stop_rule_and_data_minimum(tiny_model):
    train, test = _data()
    opts = ClimbOptions(model=tiny_model, target=parse_target("accuracy=0"), batch_size=4, latency_sample=1)
    result = climb(train, test, opts)
    assert [r.name for r in result.rungs] == ["prompt"]  # target met at once: no further rungs
    assert result.rungs[0].met_target and result.recommendation["rung"] == "prompt"
    row = get_db().one("SELECT * FROM climbs WHERE id=?", (result.id,))
    assert json.loads(row["summary"])["recommendation"]["rung"] == "prompt"
    from ladder.climb.store import get_climb, list_climbs

    stored = get_climb(result.id)
    assert stored["rungs"][0]["name"] == "prompt" and stored["report_dir"] == result.report_dir
    assert [c["id"] for c in list_climbs()] == [result.id]
    assert result.report_dir and "report.html" in {
        p.name for p in __import__("pathlib").Path(result.report_dir).iterdir()
    }


def test_fine_tune_refused_below_minimum(tiny_model):
    train, test = _data()
    # retrieved=False: the retrieved-shots rung needs the real embedder; this test is about the rule.
    opts = ClimbOptions(
        model=tiny_model,
        batch_size=4,
        latency_sample=0,
        shots=2,
        retrieved=False,
        target=parse_target("accuracy=1.01"),
        all=True,
    )
    result = climb(train, test, opts)
    assert [r.name for r in result.rungs] == ["prompt", "few-shot fixed k=2", "fine-tune"]
    ft = [r for r in result.rungs if r.kind == "fine-tune"]
    assert ft and ft[0].run is None and "below the classification minimum of 200" in ft[0].skipped
    assert "--force-tune" in ft[0].skipped
