"""The real worker process: kill -9 mid-training resumes to the same adapter; cancel stops it quickly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from safetensors.torch import load_file
from tests.tuning.conftest import file_id

from ladder.store.db import get_db
from ladder.tuning import checkpoints, jobs, leases, service, worker

HP = {
    "n_epochs": 2,
    "batch_size": 2,
    "micro_batch_size": 1,
    "lora_r": 4,
    "max_seq_length": 64,
    "checkpoint_every": 3,
    "warmup_ratio": 0.1,
    "lora_dropout": 0.1,
}


@pytest.fixture(autouse=True)
def one_thread(monkeypatch):
    # The same thread count in this process and in the worker keeps float sums in the same order.
    monkeypatch.setenv("LADDER_THREADS", "1")
    from ladder.settings import reset_settings

    reset_settings()


def spawn_worker() -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "ladder.tuning.worker"],
        env=os.environ.copy(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def wait_for(cond, timeout: float, what: str):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        value = cond()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def adapter(path) -> dict:
    return load_file(path / "adapter_model.safetensors")


@pytest.mark.slow  # two real worker processes (about 30 s on 2 busy cores)
def test_kill_9_mid_training_resumes_to_the_same_adapter(tiny_model, make_chat, tmp_path):
    data = make_chat(tmp_path / "train.jsonl", 18)
    # The reference: the same job, uninterrupted, in this process.
    ref = service.create_job(file_id(data), model=tiny_model, hyperparameters=HP, seed=3)
    ref_done = worker.run_job(leases.claim_next("ref"))
    assert ref_done.status == "succeeded"

    job = service.create_job(file_id(data), model=tiny_model, hyperparameters=HP, seed=3)
    total = job.resolved["total_steps"]
    proc = spawn_worker()
    try:
        # Let it get past a checkpoint, then kill it in the middle of a later step.
        wait_for(lambda: any(c.step >= 3 for c in jobs.checkpoints(job.id)), 120, "a checkpoint")
        wait_for(
            lambda: (
                get_db().one(
                    "SELECT MAX(json_extract(data,'$.step')) AS s FROM ft_events WHERE job_id=? AND type='metrics'",
                    (job.id,),
                )["s"]
                >= 4
            ),
            60,
            "step 4",
        )
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert jobs.load(job.id).status == "running"  # what the db says right after the crash
    # A leftover half-written checkpoint (a crash during a save) must be ignored on resume.
    d = service.job_dir(job.id)
    partial = d / "checkpoints" / ".tmp-step-9999999-x"
    partial.mkdir()
    (partial / "adapter_model.safetensors").write_bytes(b"garbage")
    # The dead worker is noticed: the job is queued again, never left running.
    assert service.get_job(job.id).status == "queued"
    assert service.ensure_worker() is not None
    done = service.wait(job.id, poll=0.2, timeout=180)
    assert done.status == "succeeded", done.error
    assert not partial.exists()
    msgs = [e.message for e in service.list_events(job.id, limit=500)]
    assert any("stopped unexpectedly" in m for m in msgs)
    assert any(m.startswith("Resumed from the checkpoint at step") for m in msgs)
    steps = [e.data["step"] for e in reversed(service.list_events(job.id, limit=500)) if e.type == "metrics"]
    assert steps[-1] == total

    a, b = adapter(service.job_dir(ref.id) / "adapter"), adapter(d / "adapter")
    assert a.keys() == b.keys()
    moved = max(
        float((a[k] - load_file(checkpoints.complete(d)[0] / "adapter_model.safetensors")[k]).abs().max()) for k in a
    )
    assert moved > 1e-4  # training did change the weights after the first checkpoint
    for k in a:
        torch.testing.assert_close(a[k], b[k], atol=1e-5, rtol=1e-4)


@pytest.mark.slow  # a real worker process
def test_cancel_stops_a_running_job_within_seconds(tiny_model, make_chat, tmp_path):
    data = make_chat(tmp_path / "train.jsonl", 200)
    job = service.create_job(file_id(data), model=tiny_model, hyperparameters={**HP, "n_epochs": 5}, seed=1)
    assert service.ensure_worker() is not None
    assert service.ensure_worker() is None  # one worker at a time
    wait_for(lambda: any(e.type == "metrics" for e in service.list_events(job.id, limit=5)), 120, "training")
    t0 = time.monotonic()
    service.cancel_job(job.id)
    done = service.wait(job.id, poll=0.1, timeout=30)
    assert done.status == "cancelled"
    assert time.monotonic() - t0 < 10
    # the worker exits on its own once the queue is empty
    wait_for(lambda: not service.worker_alive(), 30, "the idle worker to exit")


@pytest.mark.slow  # a real worker process
def test_sigterm_hands_the_running_job_back_to_the_queue(tiny_model, make_chat, tmp_path):
    data = make_chat(tmp_path / "train.jsonl", 40)
    job = service.create_job(file_id(data), model=tiny_model, hyperparameters={**HP, "n_epochs": 5}, seed=1)
    proc = spawn_worker()
    try:
        wait_for(lambda: any(e.type == "metrics" for e in service.list_events(job.id, limit=5)), 120, "training")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    back = jobs.load(job.id)
    assert back.status == "queued" and back.attempts == 0  # not counted as a death
    assert any("worker was stopped" in e.message for e in service.list_events(job.id, limit=20))
    assert not service.worker_alive()  # the slot is free for the next worker at once
    assert not list((service.job_dir(job.id) / "checkpoints").glob(".tmp-*"))
