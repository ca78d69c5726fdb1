"""Fixtures for tuning tests: small chat datasets and fast hyperparameters for the tiny model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

FAST_HP = {
    "n_epochs": 2,
    "batch_size": 4,
    "micro_batch_size": 2,
    "lora_r": 4,
    "max_seq_length": 96,
    "checkpoint_every": 2,
    "warmup_ratio": 0.1,
}


def write_chat(path: Path, n: int, offset: int = 0) -> Path:
    labels = ["billing", "shipping", "refund"]
    with open(path, "w") as f:
        for i in range(offset, offset + n):
            msgs = [
                {"role": "system", "content": "Classify the message."},
                {"role": "user", "content": f"message number {i} about {labels[i % 3]} " + "x " * (i % 7)},
                {"role": "assistant", "content": labels[i % 3]},
            ]
            f.write(json.dumps({"messages": msgs}) + "\n")
    return path


def file_id(path: Path, project_id: str = "proj-default") -> str:
    """Store a local file as the project's `file-…` (unchecked, so create_job's own checks are what a test sees)."""
    from ladder.store import files

    return files.create(path.read_bytes(), path.name, "fine-tune", project_id).id


@pytest.fixture
def fast_hp() -> dict:
    return dict(FAST_HP)


@pytest.fixture
def make_chat():
    return write_chat


@pytest.fixture
def train_file(tmp_path) -> Path:
    return write_chat(tmp_path / "train.jsonl", 12)


@pytest.fixture
def valid_file(tmp_path) -> Path:
    return write_chat(tmp_path / "valid.jsonl", 4, offset=100)


def queued_job(project_id: str = "proj-default", total_steps: int = 4):
    """A job row as create_job leaves it once its files are checked (no data behind it: for queue tests)."""
    from ladder.tuning import jobs

    job = jobs.insert_job(
        project_id=project_id,
        model="m",
        suffix=None,
        training_file="file-x",
        validation_file=None,
        hyperparameters={},
        seed=1,
    )
    jobs.update(job.id, status="queued", resolved={"total_steps": total_steps})
    return jobs.load(job.id, None)


def children_of(pid: int) -> dict[int, str]:
    """{child pid: process state letter} of `pid`'s children, from /proc (Z: a zombie nobody reaped)."""
    out = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2 :].split()
        if int(fields[1]) == pid:
            out[int(entry.name)] = fields[0]
    return out
