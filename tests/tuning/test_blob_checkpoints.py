"""Checkpoints and tuned adapters in the blob store: a job stopped on one machine resumes on another.

"Another machine" is a fresh LADDER_SHARED_DIR and LADDER_CACHE_DIR on the same database: it has
none of the job's local files, only what LADDER_BLOB_URL holds.
"""

from __future__ import annotations

import shutil
import threading

import pytest
from safetensors.torch import load_file
from tests.s3_server import s3_blob_url, s3_endpoint, s3_keys  # noqa: F401 (fixtures)
from tests.tuning.conftest import file_id

from ladder.models import registry
from ladder.settings import get_settings, reset_settings
from ladder.tuning import checkpoints, jobs, leases, service, worker


@pytest.fixture(autouse=True)
def one_thread(monkeypatch):
    monkeypatch.setenv("LADDER_THREADS", "1")  # the same float sums on both "machines"
    reset_settings()


class AfterFirstCheckpoint(threading.Event):
    """A stop flag that goes up once the job has a checkpoint row: the worker stops at its next micro-batch."""

    def __init__(self, job_id: str):
        super().__init__()
        self.job_id = job_id

    def is_set(self) -> bool:
        return bool(jobs.checkpoints(self.job_id))


def move_to_another_machine(monkeypatch, root, name: str) -> None:
    monkeypatch.setenv("LADDER_SHARED_DIR", str(root / name / "shared"))
    monkeypatch.setenv("LADDER_CACHE_DIR", str(root / name / "cache"))
    reset_settings()


def claim(job_id: str) -> jobs.Job:
    job = leases.claim_next("test-worker")
    assert job is not None and job.id == job_id
    return job


def metric_steps(job_id: str) -> list[int]:
    return [e.data["step"] for e in reversed(service.list_events(job_id, limit=500)) if e.type == "metrics"]


def stop_move_and_resume(tiny_model, train_file, fast_hp, monkeypatch, tmp_path) -> tuple[jobs.Job, list[int]]:
    move_to_another_machine(monkeypatch, tmp_path, "machine-a")
    job = service.create_job(file_id(train_file), model=tiny_model, hyperparameters=fast_hp, seed=5)
    total = job.resolved["total_steps"]
    stopped = worker.run_job(claim(job.id), AfterFirstCheckpoint(job.id))
    assert stopped.status == "queued"  # released, not failed
    assert [c.step for c in jobs.checkpoints(job.id)] == [2]
    first = metric_steps(job.id)
    shutil.rmtree(get_settings().shared_dir)  # machine A is gone with its disk
    move_to_another_machine(monkeypatch, tmp_path, "machine-b")
    assert not service.job_dir(job.id).exists()
    done = worker.run_job(claim(job.id))
    assert done.status == "succeeded", done.error
    messages = [e.message for e in service.list_events(job.id, limit=500)]
    assert "Fetched the checkpoint at step 2 from the blob store." in messages
    assert "Resumed from the checkpoint at step 2." in messages
    steps = metric_steps(job.id)
    assert steps[: len(first)] == first and steps[len(first) :] == list(range(3, total + 1))  # no restart
    assert sorted(c.step for c in jobs.checkpoints(job.id)) == [2, 3, 4, 6]
    return done, steps


def reference_adapter(tiny_model, train_file, fast_hp, monkeypatch) -> dict:
    """The same job, never interrupted, with local files only."""
    monkeypatch.delenv("LADDER_BLOB_URL")
    reset_settings()
    job = service.create_job(file_id(train_file), model=tiny_model, hyperparameters=fast_hp, seed=5)
    done = worker.run_job(claim(job.id))
    return load_file(f"{registry.get_model(done.fine_tuned_model).adapter_path}/adapter_model.safetensors")


def test_file_url_job_resumes_on_another_machine_to_the_same_adapter(
    tiny_model, train_file, fast_hp, monkeypatch, tmp_path
):
    store = tmp_path / "blob-store"
    monkeypatch.setenv("LADDER_BLOB_URL", store.as_uri())
    done, _ = stop_move_and_resume(tiny_model, train_file, fast_hp, monkeypatch, tmp_path)
    job_root = store / "tuning" / done.id
    assert (job_root / "train.jsonl").is_file() and (job_root / "adapter" / "COMPLETE").is_file()
    ckpts = job_root / "checkpoints"
    assert sorted(p.name for p in ckpts.iterdir()) == [f"step-{s:07d}" for s in (2, 3, 4, 6)]
    # pruned as local ones are: optimizer state only on the newest KEEP_STATE
    assert [p.parent.name for p in sorted(ckpts.glob(f"*/{checkpoints.STATE}"))] == ["step-0000004", "step-0000006"]

    # a server on a third machine loads the tuned model from the blob store
    move_to_another_machine(monkeypatch, tmp_path, "machine-c")
    spec = registry.get_model(done.fine_tuned_model)
    assert spec.adapter_path == (job_root / "adapter").as_uri()
    local = registry.local_adapter(spec).adapter_path
    assert local.startswith(str(tmp_path / "machine-c" / "cache"))
    tuned = load_file(f"{local}/adapter_model.safetensors")
    ref = reference_adapter(tiny_model, train_file, fast_hp, monkeypatch)
    assert tuned.keys() == ref.keys() and all((tuned[k] == ref[k]).all() for k in ref)


def test_s3_job_resumes_on_another_machine_and_the_model_loads_there(
    tiny_model,
    train_file,
    fast_hp,
    monkeypatch,
    tmp_path,
    s3_blob_url,  # noqa: F811
):
    from ladder.models.service import chat
    from ladder.models.types import ChatRequest, GenerationParams, Message

    done, _ = stop_move_and_resume(tiny_model, train_file, fast_hp, monkeypatch, tmp_path)
    keys = s3_keys(s3_blob_url)
    prefix = f"tuning/{done.id}/"
    assert f"{prefix}adapter/COMPLETE" in keys and f"{prefix}valid.jsonl" in keys
    assert [k for k in keys if k.endswith(checkpoints.STATE)] == [
        f"{prefix}checkpoints/step-{s:07d}/{checkpoints.STATE}" for s in (4, 6)
    ]
    move_to_another_machine(monkeypatch, tmp_path, "machine-c")
    spec = registry.get_model(done.fine_tuned_model)
    assert spec.adapter_path == f"{s3_blob_url}/{prefix}adapter"
    req = ChatRequest(
        messages=[Message("user", "message number 3 about billing")], params=GenerationParams(max_tokens=3)
    )
    assert chat(done.fine_tuned_model, req).usage.completion_tokens > 0
    assert (get_settings().cache_dir / "blob-dirs").is_dir()  # fetched into this machine's cache

    registry.remove(done.fine_tuned_model)  # the tuned model's adapter goes from the blob store too
    assert not [k for k in s3_keys(s3_blob_url) if k.startswith(f"{prefix}adapter/")]
    assert f"{prefix}checkpoints/step-0000006/adapter_model.safetensors" in s3_keys(s3_blob_url)


def test_an_unreachable_blob_store_fails_the_job_clearly(tiny_model, train_file, fast_hp, monkeypatch, tmp_path):
    store = tmp_path / "blob-store"
    monkeypatch.setenv("LADDER_BLOB_URL", store.as_uri())
    reset_settings()
    job = service.create_job(file_id(train_file), model=tiny_model, hyperparameters=fast_hp, seed=5)
    # a file where the checkpoints folder should be: the first checkpoint cannot be uploaded
    (store / "tuning" / job.id / "checkpoints").write_text("in the way")
    done = worker.run_job(claim(job.id))
    assert done.status == "failed" and done.error["code"] == "blob_store_unavailable"
    assert "could not upload to" in done.error["message"] and "LADDER_BLOB_URL" in done.error["message"]
    assert jobs.checkpoints(job.id) == []  # no row points at an object that is not there
