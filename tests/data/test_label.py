"""Distillation: a teacher answers inputs into chat examples; an interrupted run resumes where it stopped."""

from __future__ import annotations

import json

import pytest

from ladder.data.formats import read_dataset
from ladder.data.label import label, read_inputs

# The random tiny model answers greedy prompts with blank lines and never stops within a few tokens,
# so these runs sample (seeded: the same text every run) and keep answers cut at max_tokens.
SAMPLED = {"system": "Answer briefly.", "batch_size": 2, "max_tokens": 4, "temperature": 1.0, "keep_truncated": True}


class Stop(Exception):
    pass


def _stop_after(n):
    def on_progress(done, total):
        if done >= n:
            raise Stop

    return on_progress


def _lines(path):
    return [json.loads(x) for x in path.read_text().splitlines()]


def test_label_writes_chat_examples_and_resumes_after_a_crash(tmp_path, tiny_model):
    from ladder.store.usage import summary

    inputs = tmp_path / "inputs.txt"
    inputs.write_text("".join(f"question number {i}\n" for i in range(6)))
    out = tmp_path / "labelled.jsonl"
    with pytest.raises(Stop):
        label(inputs, tiny_model, out, **SAMPLED, on_progress=_stop_after(3))
    first = _lines(out)
    assert len(first) == 3
    # A crash in the middle of writing a line leaves half a line; the next run cuts it off.
    with open(out, "a") as f:
        f.write('{"messages": [{"role": "user", "con')
    seen = []
    r = label(inputs, tiny_model, out, **SAMPLED, on_progress=lambda d, t: seen.append((d, t)))
    assert (r.total, r.skipped, r.written, r.empty) == (6, 3, 3, 0)
    assert seen[0] == (3, 6) and seen[-1] == (6, 6)
    lines = _lines(out)
    assert lines[:3] == first
    examples = read_dataset(out)  # valid chat examples
    assert [e.messages[1]["content"] for e in examples] == [f"question number {i}" for i in range(6)]
    assert all(e.messages[0] == {"role": "system", "content": "Answer briefly."} for e in examples)
    # Nothing left to do: a third run asks the teacher nothing.
    before = sum(row["calls"] for row in summary(by="model"))
    again = label(inputs, tiny_model, out, **SAMPLED)
    assert (again.skipped, again.written) == (6, 0)
    assert sum(row["calls"] for row in summary(by="model")) == before


def test_empty_answers_are_not_written_so_a_rerun_retries_them(tmp_path, tiny_model):
    inputs = tmp_path / "inputs.txt"
    inputs.write_text("a\nb\n")
    out = tmp_path / "out.jsonl"
    # The random tiny model answers greedy prompts with blank lines only.
    r = label(inputs, tiny_model, out, max_tokens=3)
    assert (r.written, r.empty) == (0, 2)
    assert out.read_text() == ""
    assert label(inputs, tiny_model, out, max_tokens=3).skipped == 0


def test_answers_cut_at_max_tokens_are_left_for_a_rerun(tmp_path, tiny_model):
    inputs = tmp_path / "inputs.txt"
    inputs.write_text("a\nb\n")
    out = tmp_path / "out.jsonl"
    # The random tiny model never stops by itself within 3 tokens.
    r = label(inputs, tiny_model, out, max_tokens=3, temperature=1.0)
    assert (r.written, r.truncated) == (0, 2) and out.read_text() == ""
    r = label(inputs, tiny_model, out, max_tokens=3, temperature=1.0, keep_truncated=True)
    assert (r.skipped, r.written) == (0, 2)


def test_inputs_from_csv_column_and_chat_jsonl(tmp_path):
    csv = tmp_path / "in.csv"
    csv.write_text('id,text\n1,"hello, there"\n2,second\n')
    assert [m for _, m in read_inputs(csv)] == [
        [{"role": "user", "content": "hello, there"}],
        [{"role": "user", "content": "second"}],
    ]
    chat = tmp_path / "in.jsonl"
    chat.write_text(
        json.dumps({"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "old answer"}]})
        + "\n"
    )
    assert read_inputs(chat, system="S") == [
        (1, [{"role": "system", "content": "S"}, {"role": "user", "content": "q"}])
    ]
    with pytest.raises(Exception, match="--input-col"):
        read_inputs(csv, input_col="body")


def test_unknown_teacher_fails_before_any_work(tmp_path):
    inputs = tmp_path / "in.txt"
    inputs.write_text("hi\n")
    with pytest.raises(Exception, match="unknown model"):
        label(inputs, "no-such-model", tmp_path / "out.jsonl")
    assert not (tmp_path / "out.jsonl").exists()
