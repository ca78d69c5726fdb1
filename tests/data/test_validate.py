"""Validation: format errors, tokens with the model's tokenizer, length, duplicates, leakage, labels, minimums."""

from __future__ import annotations

import pytest

from ladder.data.validate import HARD_MINIMUM, TASK_MINIMUMS, validate
from tests.data.helpers import chat, labelled, write_jsonl


def codes(report, severity="warning"):
    return [(p.line, p.code) for p in report.problems if p.severity == severity]


def test_format_errors_make_the_report_fail_with_every_line(tmp_path):
    f = write_jsonl(tmp_path / "t.jsonl", [*labelled(12), "{oops", {"messages": [{"role": "user", "content": "q"}]}])
    r = validate(f, count=False)
    assert not r.ok
    assert [(p.line, p.field) for p in r.errors] == [(13, ""), (14, "messages")]
    assert r.n_examples == 12
    d = r.as_dict()
    assert d["ok"] is False and d["n_errors"] == 2 and d["problems"][0]["line"] == 13


def test_hard_floor_of_ten_examples(tmp_path):
    r = validate(write_jsonl(tmp_path / "t.jsonl", labelled(HARD_MINIMUM - 1)), count=False)
    assert not r.ok and r.errors[0].code == "too_few"
    assert validate(write_jsonl(tmp_path / "u.jsonl", labelled(HARD_MINIMUM)), count=False).ok


def test_task_minimum_warns_that_few_shot_is_the_better_rung(tmp_path):
    f = write_jsonl(tmp_path / "t.jsonl", labelled(50))
    r = validate(f, count=False)
    assert r.task == "classification" and r.task_inferred  # outputs are labels
    (w,) = [p for p in r.warnings if p.code == "below_minimum"]
    assert "200" in w.message and "few-shot" in w.hint
    r = validate(f, task="knowledge", count=False)
    assert (r.minimum, r.ideal) == TASK_MINIMUMS["knowledge"]
    assert r.ok  # a warning, not an error
    with pytest.raises(Exception, match="unknown task type"):
        validate(f, task="poetry", count=False)


def test_exact_near_duplicates_and_conflicts(tmp_path):
    rows = labelled(20)
    rows.append(rows[3])  # line 21: exact copy of line 4
    rows.append(chat(rows[5]["messages"][0]["content"] + "!!", "billing"))  # 22: same input, other label
    rows.append(chat("Where is my parcel? It has not arrived yet and I ordered it two weeks ago", "shipping"))
    rows.append(chat("where is my parcel, it has not arrived yet and I ordered it 2 weeks ago", "shipping"))
    r = validate(write_jsonl(tmp_path / "t.jsonl", rows), count=False)
    assert r.duplicates == [(21, 4)]
    assert r.conflicts == [(22, 6)]
    assert [(a, b) for a, b, _ in r.near_duplicates] == [(22, 6), (24, 23)]
    assert {"duplicate", "conflict", "near_duplicate"} <= {c for _, c in codes(r)}


def test_label_distribution_and_imbalance(tmp_path):
    rows = labelled(40, labels=("a", "b")) + labelled(2, labels=("rare",), start=100)
    r = validate(write_jsonl(tmp_path / "t.jsonl", rows), count=False)
    assert r.labels == {"a": 20, "b": 20, "rare": 2}
    assert "imbalance" in [c for _, c in codes(r)]
    free = [chat(f"question {i}", f"a long free text answer number {i} with many words in it") for i in range(12)]
    assert validate(write_jsonl(tmp_path / "f.jsonl", free), count=False).labels is None


def test_train_test_leakage(tmp_path):
    rows = labelled(30)
    train = write_jsonl(tmp_path / "train.jsonl", rows[:20])
    test = write_jsonl(
        tmp_path / "test.jsonl", [rows[2], rows[25], chat(rows[7]["messages"][0]["content"].upper(), "other")]
    )
    r = validate(train, test_path=test, count=False)
    assert [(t, tr) for t, tr, _ in r.leakage] == [(1, 3), (3, 8)]
    assert all(s == 1.0 for *_, s in r.leakage)
    assert sum(c == "leakage" for _, c in codes(r)) == 2


def test_tokens_counted_with_the_models_tokenizer_and_template(tmp_path, tiny_model):
    from ladder.models.hf import load_tokenizer

    rows = labelled(12)
    rows.append(chat("word " * 300, "billing"))
    f = write_jsonl(tmp_path / "t.jsonl", rows)
    r = validate(f, model=tiny_model, max_length=200)
    tok = load_tokenizer(tiny_model)
    rendered = tok.apply_chat_template(rows[0]["messages"], tokenize=False)
    assert "<|im_start|>assistant" in rendered  # SmolLM2's ChatML template, not the bare text
    assert r.tokens[0] == len(tok(rendered, add_special_tokens=False)["input_ids"])
    assert r.tokenizer == tiny_model
    # "billing" is one or two tokens plus the end-of-turn token: far fewer than the whole example.
    assert 2 <= r.trained_tokens[0] <= 4 < r.tokens[0]
    assert [line for line, _ in r.over_length] == [13]
    assert r.tokens_per_epoch == sum(r.tokens[:12]) + 200  # the long one is truncated to max_length
    assert r.epochs == 8  # 13 examples: OpenAI's rule raises epochs so that examples x epochs >= 100
    assert r.estimated_seconds == pytest.approx(r.epochs * r.tokens_per_epoch / r.tokens_per_second)
    assert r.estimated_seconds > 0


def test_weight_zero_everywhere_is_flagged(tmp_path):
    rows = labelled(11) + [chat("q", "a", weight=0)]
    r = validate(write_jsonl(tmp_path / "t.jsonl", rows), count=False)
    assert (12, "no_trained_tokens") in codes(r)


def test_time_estimate_uses_this_machines_measured_speed(tmp_path, tiny_model):
    from ladder.data.tokens import save_measured_speed

    f = write_jsonl(tmp_path / "t.jsonl", labelled(12))
    before = validate(f, model=tiny_model)
    for device in ("cpu", "cuda"):
        save_measured_speed(tiny_model, 10.0, device)
    after = validate(f, model=tiny_model)
    assert after.tokens_per_second == 10.0 and "calibrate" in after.speed_source
    assert after.estimated_seconds == pytest.approx(after.epochs * after.tokens_per_epoch / 10.0)
    assert after.estimated_seconds > before.estimated_seconds


def test_time_estimate_learns_from_the_last_succeeded_job(tmp_path, tiny_model):
    import json
    import time

    from ladder.store.db import DEFAULT_PROJECT, get_db

    db = get_db()
    with db.tx() as conn:
        conn.execute(
            "INSERT INTO ft_jobs(id, project_id, model, status, training_file, seed, created_at,"
            " finished_at) VALUES ('ftjob-x', ?, ?, 'succeeded', 'file-x', 0, ?, ?)",
            (DEFAULT_PROJECT, tiny_model, time.time(), time.time()),
        )
        for i, tps in enumerate([100.0, 300.0, 200.0]):
            conn.execute(
                "INSERT INTO ft_events(id, job_id, level, type, message, data, created_at)"
                " VALUES (?, 'ftjob-x', 'info', 'metrics', 'step', ?, ?)",
                (f"ftevent-{i}", json.dumps({"step": i + 1, "tokens_per_second": tps}), time.time()),
            )
    r = validate(write_jsonl(tmp_path / "t.jsonl", labelled(12)), model=tiny_model)
    assert r.tokens_per_second == 200.0 and "earlier fine-tuning jobs" in r.speed_source
