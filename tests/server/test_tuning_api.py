"""The whole fine-tuning flow through the openai SDK: upload, create, poll, events, checkpoints, chat."""

from __future__ import annotations

import json
import time

import openai
import pytest

FAST_HP = {
    "n_epochs": 1,
    "batch_size": 4,
    "micro_batch_size": 2,
    "lora_r": 4,
    "max_seq_length": 96,
    "checkpoint_every": 2,
    "warmup_ratio": 0.1,
}


def chat_jsonl(n: int) -> bytes:
    labels = ["billing", "shipping", "refund"]
    lines = []
    for i in range(n):
        msgs = [
            {"role": "user", "content": f"message {i} about {labels[i % 3]}"},
            {"role": "assistant", "content": labels[i % 3]},
        ]
        lines.append(json.dumps({"messages": msgs}))
    return ("\n".join(lines) + "\n").encode()


@pytest.mark.slow
def test_fine_tuning_flow_through_the_sdk(srv, tiny_model):
    c, other = srv.client(), srv.client(srv.key_b)
    f = c.files.create(file=("train.jsonl", chat_jsonl(12)), purpose="fine-tune")
    job = c.fine_tuning.jobs.create(
        training_file=f.id,
        model=tiny_model,
        suffix="api",
        seed=3,
        method={"type": "supervised", "supervised": {"hyperparameters": FAST_HP}},
    )
    assert job.object == "fine_tuning.job" and job.status in ("queued", "running")
    assert [j.id for j in c.fine_tuning.jobs.list(limit=5)] == [job.id]

    # another project cannot see or touch it, nor use the file
    for call in (
        lambda: other.fine_tuning.jobs.retrieve(job.id),
        lambda: other.fine_tuning.jobs.cancel(job.id),
        lambda: other.fine_tuning.jobs.list_events(job.id),
        lambda: other.fine_tuning.jobs.checkpoints.list(job.id),
        lambda: other.fine_tuning.jobs.create(training_file=f.id, model=tiny_model),
    ):
        with pytest.raises(openai.NotFoundError):
            call()
    assert other.fine_tuning.jobs.list().data == []

    deadline = time.time() + 240
    while job.status not in ("succeeded", "failed", "cancelled"):
        assert time.time() < deadline, "the job did not finish in time"
        time.sleep(1)
        job = c.fine_tuning.jobs.retrieve(job.id)
    assert job.status == "succeeded", job.error
    assert job.fine_tuned_model == f"ft:{tiny_model}:api:{job.id}"

    events = c.fine_tuning.jobs.list_events(job.id, limit=100).data
    assert events and all(e.object == "fine_tuning.job.event" for e in events)
    ckpts = c.fine_tuning.jobs.checkpoints.list(job.id).data
    assert ckpts and ckpts[0].fine_tuned_model_checkpoint.startswith(job.fine_tuned_model)

    ids = [m.id for m in c.models.list()]
    assert job.fine_tuned_model in ids and job.fine_tuned_model not in [m.id for m in other.models.list()]
    msgs = [{"role": "user", "content": "message 1 about shipping"}]
    out = c.chat.completions.create(model=job.fine_tuned_model, messages=msgs, max_tokens=4)
    assert out.model == job.fine_tuned_model and out.usage.completion_tokens >= 1
    streamed = "".join(
        ch.choices[0].delta.content or ""
        for ch in c.chat.completions.create(model=job.fine_tuned_model, messages=msgs, max_tokens=4, stream=True)
        if ch.choices
    )
    assert streamed == out.choices[0].message.content
    with pytest.raises(openai.NotFoundError):
        other.chat.completions.create(model=job.fine_tuned_model, messages=msgs, max_tokens=4)

    # each SDK error class for its status
    with pytest.raises(openai.ConflictError):
        c.fine_tuning.jobs.cancel(job.id)  # already succeeded
    with pytest.raises(openai.NotFoundError):
        c.fine_tuning.jobs.retrieve("ftjob-doesnotexist")
    small = c.files.create(file=("small.jsonl", chat_jsonl(3)), purpose="fine-tune")
    with pytest.raises(openai.BadRequestError) as e:
        c.fine_tuning.jobs.create(training_file=small.id, model=tiny_model)
    assert e.value.body["code"] == "too_few_examples"
    # the schema states both: a file id's pattern, and supervised as the only method
    with pytest.raises(openai.UnprocessableEntityError):
        c.fine_tuning.jobs.create(training_file="/etc/passwd", model=tiny_model)
    with pytest.raises(openai.UnprocessableEntityError):
        c.fine_tuning.jobs.create(training_file=f.id, model=tiny_model, method={"type": "dpo"})
    with pytest.raises(openai.AuthenticationError):
        srv.client("sk-ladder-nope").fine_tuning.jobs.list()


def test_cancel_a_queued_job(srv, tiny_model, monkeypatch):
    from ladder.tuning import service

    monkeypatch.setattr(service, "ensure_worker", lambda: None)  # keep it queued
    c = srv.client()
    f = c.files.create(file=("train.jsonl", chat_jsonl(12)), purpose="fine-tune")
    job = c.fine_tuning.jobs.create(training_file=f.id, model=tiny_model, hyperparameters={"n_epochs": 1})
    assert c.fine_tuning.jobs.cancel(job.id).status == "cancelled"
