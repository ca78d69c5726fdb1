"""Jobs end to end on the tiny model: validation, the state machine, events, checkpoints, projects."""

from __future__ import annotations

import json

import pytest
from tests.tuning.conftest import file_id

from ladder.errors import Conflict, InvalidInput, NotFound
from ladder.models import registry
from ladder.store import usage
from ladder.tuning import jobs, leases, service, worker


def run_inline(job_id: str) -> jobs.Job:
    """Claim the queued job and train it in this process (what a worker does)."""
    job = leases.claim_next("test-worker")
    assert job is not None and job.id == job_id
    return worker.run_job(job)


def test_job_runs_to_success_with_events_checkpoints_and_usage(tiny_model, train_file, valid_file, fast_hp, make_chat):
    job = service.create_job(
        file_id(train_file),
        validation_file=file_id(valid_file),
        model=tiny_model,
        suffix="demo",
        hyperparameters={**fast_hp, "early_stopping_patience": 0},  # every step runs (stopping: test_convergence)
        seed=7,
    )
    assert job.status == "queued"
    assert job.training_file.startswith("file-") and job.validation_file.startswith("file-")
    assert job.resolved["n_epochs"] == 2 and job.resolved["total_steps"] == 6
    assert job.repro["seed"] == 7 and len(job.repro["training_file_sha256"]) == 64
    assert job.repro["libraries"]["torch"]

    done = run_inline(job.id)
    assert done.status == "succeeded", done.error
    assert done.fine_tuned_model == f"ft:{tiny_model}:demo:{job.id}"
    spec = registry.get_model(done.fine_tuned_model)
    assert spec.base_model == tiny_model
    assert spec.adapter_path and (__import__("pathlib").Path(spec.adapter_path) / "adapter_config.json").exists()

    events = service.list_events(job.id, limit=100)
    metrics = [e for e in events if e.type == "metrics"]
    assert [e.data["step"] for e in reversed(metrics)] == [1, 2, 3, 4, 5, 6]
    assert all("train_loss" in e.data for e in metrics)
    # auto eval_every: twice an epoch (every 2 of the 3 steps, counted within the epoch), and at its end
    assert [e.data["step"] for e in reversed(metrics) if "valid_loss" in e.data] == [2, 3, 5, 6]
    shaped = events[0].as_openai()
    assert shaped["object"] == "fine_tuning.job.event" and shaped["level"] in ("info", "warn", "error")

    ckpts = service.list_checkpoints(job.id)
    # every 2 steps, at each epoch end (step 3 and 6), and at each eval that was the best so far
    bests = {e.data["step"] for e in metrics if e.data.get("best_step") == e.data["step"]}
    assert sorted(c.step for c in ckpts) == sorted({2, 3, 4, 6} | bests)
    assert ckpts[0].as_openai()["fine_tuned_model_checkpoint"].endswith(":ckpt-step-6")
    registry.get_model(ckpts[-1].model_name)  # each checkpoint is usable as a model

    shown = done.as_openai()
    assert shown["object"] == "fine_tuning.job" and shown["status"] == "succeeded"
    assert shown["hyperparameters"]["n_epochs"] == 2 and shown["trained_tokens"] > 0
    trained = [r for r in usage.summary(by="kind") if r["key"] == "train"]
    assert trained and trained[0]["trained_tokens"] == done.trained_tokens


def test_too_few_examples_is_refused_and_recorded(tiny_model, tmp_path, fast_hp, make_chat):
    small = make_chat(tmp_path / "small.jsonl", 5)
    with pytest.raises(InvalidInput, match="at least 10"):
        service.create_job(file_id(small), model=tiny_model)
    (failed,) = service.list_jobs()
    assert failed.status == "failed" and failed.error["code"] == "too_few_examples"


def test_bad_lines_are_named(tiny_model, tmp_path, fast_hp, make_chat):
    bad = make_chat(tmp_path / "bad.jsonl", 12)
    bad.write_text(bad.read_text() + '{"messages": [{"role": "robot", "content": "x"}]}\n')
    with pytest.raises(InvalidInput, match="line 13"):
        service.create_job(file_id(bad), model=tiny_model)


def test_auto_hyperparameters_are_stored(tiny_model, tmp_path, fast_hp, make_chat):
    data = make_chat(tmp_path / "d.jsonl", 20)
    job = service.create_job(file_id(data), model=tiny_model)
    # 20 examples x 3 epochs < 100, so the epochs grow to reach 100 passes over examples.
    assert job.resolved["n_epochs"] == 5 and job.resolved["batch_size"] == 4
    with pytest.raises(InvalidInput, match="unknown hyperparameter"):
        service.create_job(file_id(data), model=tiny_model, hyperparameters={"n_epoch": 3})


def test_training_file_by_id_and_other_projects_see_nothing(tiny_model, train_file, fast_hp, make_chat):
    from ladder.store import files

    rec = files.create(train_file.read_bytes(), "train.jsonl", "fine-tune")
    job = service.create_job(rec.id, model=tiny_model, hyperparameters=fast_hp)
    assert job.training_file == rec.id
    with pytest.raises(NotFound):
        service.get_job(job.id, project_id="proj-other")
    with pytest.raises(NotFound):
        service.cancel_job(job.id, project_id="proj-other")
    assert service.list_jobs(project_id="proj-other") == []


def test_cancel_queued_then_resume_and_finish(tiny_model, train_file, fast_hp, make_chat):
    job = service.create_job(file_id(train_file), model=tiny_model, hyperparameters=fast_hp, seed=1)
    assert service.cancel_job(job.id).status == "cancelled"
    with pytest.raises(Conflict):
        service.cancel_job(job.id)
    assert service.resume_job(job.id).status == "queued"
    assert run_inline(job.id).status == "succeeded"
    with pytest.raises(Conflict):
        service.resume_job(job.id)


def test_disk_full_fails_clearly_and_keeps_earlier_checkpoints(tiny_model, train_file, monkeypatch, fast_hp, make_chat):
    import errno

    from ladder.tuning import checkpoints

    real = checkpoints._fsync_tree
    calls = {"n": 0}

    def full_on_second(path):
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        real(path)

    monkeypatch.setattr(checkpoints, "_fsync_tree", full_on_second)
    job = service.create_job(file_id(train_file), model=tiny_model, hyperparameters=fast_hp, seed=1)
    done = run_inline(job.id)
    assert done.status == "failed" and done.error["code"] == "disk_full"
    assert "ladder jobs resume" in done.error["message"]
    d = service.job_dir(job.id) / "checkpoints"
    assert [p.name for p in checkpoints.complete(service.job_dir(job.id))] == ["step-0000002"]
    assert not list(d.glob(".tmp-*"))  # the half-written one is gone
    # and the job can be resumed from the surviving checkpoint once space is back
    monkeypatch.setattr(checkpoints, "_fsync_tree", real)
    # as if the worker had died between the checkpoint's rename and its row: the row comes back
    from ladder.store.db import get_db

    get_db().execute("DELETE FROM ft_checkpoints WHERE job_id=?", (job.id,))
    service.resume_job(job.id)
    resumed = run_inline(job.id)
    assert resumed.status == "succeeded"
    assert sorted(c.step for c in service.list_checkpoints(job.id)) == [2, 3, 4, 6]
    assert any("Resumed from the checkpoint at step 2" in e.message for e in service.list_events(job.id, limit=99))


def test_event_pages(tiny_model, train_file, fast_hp, make_chat):
    job = service.create_job(file_id(train_file), model=tiny_model, hyperparameters=fast_hp)
    run_inline(job.id)
    first = service.list_events(job.id, limit=3)
    more = service.list_events(job.id, after=first[-1].id, limit=3)
    assert len(first) == 3 and len(more) == 3
    assert first[-1].seq > more[0].seq
    assert json.dumps(first[0].as_openai())


def test_out_of_memory_fails_clearly(tiny_model, train_file, fast_hp, monkeypatch):
    from ladder.tuning import trainer

    def oom(*a, **k):
        raise MemoryError()

    monkeypatch.setattr(trainer, "token_loss", oom)
    job = service.create_job(file_id(train_file), model=tiny_model, hyperparameters=fast_hp)
    done = run_inline(job.id)
    assert done.status == "failed" and done.error["code"] == "out_of_memory"
    assert "micro_batch_size" in done.error["message"]
    assert service.list_events(job.id)[0].level == "error"


def test_a_dead_worker_is_never_left_running(tiny_model, train_file, fast_hp, monkeypatch):
    job = service.create_job(file_id(train_file), model=tiny_model, hyperparameters=fast_hp)
    leases.claim_next("gone")
    # the lease ran out (the worker was on another host or its pid was reused)
    jobs.update(job.id, lease_expires_at=0.0, worker_host="elsewhere")
    assert service.get_job(job.id).status == "queued"
    for _ in range(leases.MAX_ATTEMPTS - 1):
        leases.claim_next("gone")
        jobs.update(job.id, lease_expires_at=0.0)
        leases.reclaim_stale()
    failed = service.get_job(job.id)
    assert failed.status == "failed" and failed.error["code"] == "worker_died"
