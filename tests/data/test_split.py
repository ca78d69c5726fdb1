"""Splits: deterministic for a seed, stratified by label, repeated inputs kept on one side."""

from __future__ import annotations

from collections import Counter

import pytest

from ladder.data.formats import label_of, read_dataset
from ladder.data.split import split
from tests.data.helpers import chat, labelled, write_jsonl


def _inputs(path):
    return [e.messages[0]["content"] for e in read_dataset(path)]


def test_same_seed_same_split_other_seed_other_split(tmp_path):
    f = write_jsonl(tmp_path / "d.jsonl", labelled(100))
    a = split(f, test=0.2, seed=1, out_dir=tmp_path / "a")
    b = split(f, test=0.2, seed=1, out_dir=tmp_path / "b")
    c = split(f, test=0.2, seed=2, out_dir=tmp_path / "c")
    assert a[0].name == "d.train.jsonl" and a[1].name == "d.test.jsonl"
    assert a[0].read_bytes() == b[0].read_bytes() and a[1].read_bytes() == b[1].read_bytes()
    assert _inputs(a[1]) != _inputs(c[1])
    train, test = _inputs(a[0]), _inputs(a[1])
    assert len(test) == 20 and len(train) == 80
    assert not set(train) & set(test)
    assert sorted(train + test) == sorted(_inputs(f))


def test_stratified_split_keeps_label_shares(tmp_path):
    rows = labelled(60, labels=("a",)) + labelled(30, labels=("b",), start=60) + labelled(10, ("c",), 90)
    f = write_jsonl(tmp_path / "d.jsonl", rows)
    _, test = split(f, test=0.2, stratify=True, seed=0)
    assert Counter(label_of(e) for e in read_dataset(test)) == {"a": 12, "b": 6, "c": 2}


def test_repeated_inputs_stay_on_one_side(tmp_path):
    rows = labelled(40) + [chat("the same question", "billing")] * 10
    train, test = split(write_jsonl(tmp_path / "d.jsonl", rows), test=0.3, seed=3)
    sides = ["the same question" in _inputs(train), "the same question" in _inputs(test)]
    assert sides.count(True) == 1


def test_split_accepts_csv_columns_and_counts(tmp_path):
    f = tmp_path / "d.csv"
    f.write_text("text,label\n" + "".join(f"message {i},{'yes' if i % 2 else 'no'}\n" for i in range(30)))
    train, test = split(f, test=5, input_col="text", output_col="label")
    assert len(read_dataset(test)) == 5 and len(read_dataset(train)) == 25


def test_bad_split_requests_are_explained(tmp_path):
    f = write_jsonl(tmp_path / "d.jsonl", labelled(10))
    with pytest.raises(Exception, match="both files need examples"):
        split(f, test=0.01)
    free = write_jsonl(tmp_path / "f.jsonl", [chat(f"q{i}", f"free answer {i} with several words") for i in range(10)])
    with pytest.raises(Exception, match="--stratify needs outputs that are labels"):
        split(free, stratify=True)
