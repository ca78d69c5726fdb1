"""Checkpoint state is read with weights_only=True: exact resume still holds, a pickled payload never runs."""

from __future__ import annotations

import pickle
import threading

import pytest
import torch
from safetensors.torch import load_file
from tests.tuning.conftest import file_id

from ladder.tuning import checkpoints, jobs, leases, service, worker


class Payload:
    """Unpickling this runs code: what a hostile file in the data dir would hold."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').write('ran')",))


def write_payload(path, marker) -> None:
    torch.save({"optimizer": Payload(marker), "step": 2}, path)


def test_a_state_file_with_a_code_payload_is_refused_before_it_runs(tmp_path):
    marker, state = tmp_path / "ran.txt", tmp_path / checkpoints.STATE
    write_payload(state, marker)
    with open(state, "rb") as f:  # the payload is real: an unguarded unpickle runs it
        torch.load(f, weights_only=False)
    assert marker.read_text() == "ran"
    marker.unlink()

    with pytest.raises(checkpoints.UnsafeCheckpoint, match="refused to load this checkpoint state") as e:
        checkpoints.load_state(state)
    assert str(state) in e.value.message and e.value.code == "unsafe_checkpoint"
    assert not marker.exists()
    with pytest.raises(pickle.UnpicklingError):  # what load_state turns into that message
        torch.load(state, weights_only=True)


def stop_after_step(monkeypatch, step: int) -> threading.Event:
    """A stop signal (as SIGTERM gives the worker) raised right after the checkpoint at `step` is saved."""
    stop, real = threading.Event(), checkpoints.save

    def save(job_dir, s, *args, **kw):
        path = real(job_dir, s, *args, **kw)
        if s == step:
            stop.set()
        return path

    monkeypatch.setattr(checkpoints, "save", save)
    return stop


def test_resume_from_weights_only_state_equals_an_uninterrupted_run(tiny_model, train_file, fast_hp, monkeypatch):
    hp = {**fast_hp, "lora_dropout": 0.1}  # dropout draws from the RNG, so RNG state must resume too
    ref = service.create_job(file_id(train_file), model=tiny_model, hyperparameters=hp, seed=4)
    assert worker.run_job(leases.claim_next("ref")).status == "succeeded"

    job = service.create_job(file_id(train_file), model=tiny_model, hyperparameters=hp, seed=4)
    stop = stop_after_step(monkeypatch, 2)
    stopped = worker.run_job(leases.claim_next("w1"), stop)
    assert stopped.status == "queued"  # handed back, from the step-2 checkpoint
    monkeypatch.undo()
    done = worker.run_job(leases.claim_next("w2"))
    assert done.status == "succeeded", done.error
    assert any("Resumed from the checkpoint at step 2" in e.message for e in jobs.events(job.id))

    a = load_file(service.job_dir(ref.id) / "adapter" / "adapter_model.safetensors")
    b = load_file(service.job_dir(job.id) / "adapter" / "adapter_model.safetensors")
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], atol=1e-6, rtol=1e-5)


def test_a_job_whose_checkpoint_holds_a_payload_fails_clearly(tiny_model, train_file, fast_hp, monkeypatch, tmp_path):
    job = service.create_job(file_id(train_file), model=tiny_model, hyperparameters=fast_hp, seed=1)
    stop = stop_after_step(monkeypatch, 2)
    assert worker.run_job(leases.claim_next("w1"), stop).status == "queued"
    monkeypatch.undo()
    marker = tmp_path / "ran.txt"
    state = checkpoints.latest_resumable(service.job_dir(job.id)) / checkpoints.STATE
    write_payload(state, marker)

    failed = worker.run_job(leases.claim_next("w2"))
    assert failed.status == "failed" and failed.error["code"] == "unsafe_checkpoint"
    assert str(state) in failed.error["message"]
    assert not marker.exists()
