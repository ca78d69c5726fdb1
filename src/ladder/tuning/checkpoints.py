"""Training checkpoints on disk: atomic directories (temp dir, rename, marker) holding a peft adapter."""

from __future__ import annotations

import json
import os
import pickle
import shutil
from pathlib import Path

from ladder.errors import LadderError
from ladder.store.blobs import atomic_dir, commit_dir
from ladder.tuning import pause_points

COMPLETE = "COMPLETE"
STATE = "trainer_state.pt"
KEEP_STATE = 2  # optimizer state is kept only on the newest checkpoints; older ones stay usable as models


class UnsafeCheckpoint(LadderError):
    """A checkpoint's state file holds more than tensors and plain values; it was not loaded."""


def ckpt_dir(job_dir: Path, step: int) -> Path:
    return job_dir / "checkpoints" / f"step-{step:07d}"


def _fsync_tree(path: Path) -> None:
    for f in path.rglob("*"):
        if f.is_file():
            with open(f, "rb") as fh:
                os.fsync(fh.fileno())


def save(job_dir: Path, step: int, epoch: float, model, state: dict, metrics: dict) -> Path:
    """Write one checkpoint; it becomes visible (with its COMPLETE marker) in a single rename.

    A crash or a full disk at any point leaves either the previous set of checkpoints or the
    new one, never a half-written directory that resume would trust.
    """
    import torch

    final = ckpt_dir(job_dir, step)
    tmp = atomic_dir(final)
    try:
        model.save_pretrained(tmp)  # a standard peft adapter directory
        torch.save(state, tmp / STATE)
        (tmp / "metrics.json").write_text(json.dumps({"step": step, "epoch": epoch, **metrics}))
        _fsync_tree(tmp)
        (tmp / COMPLETE).write_text(json.dumps({"step": step}))
        pause_points.reached("checkpoint_writing", job=job_dir.name, step=step)
        commit_dir(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _prune_state(job_dir)
    return final


def complete(job_dir: Path) -> list[Path]:
    """Complete checkpoint directories, oldest first."""
    root = job_dir / "checkpoints"
    if not root.is_dir():
        return []
    return sorted(p for p in root.glob("step-*") if (p / COMPLETE).exists())


def latest_resumable(job_dir: Path) -> Path | None:
    for p in reversed(complete(job_dir)):
        if (p / STATE).exists():
            return p
    return None


def load_state(path: Path) -> dict:
    """A checkpoint's trainer state, read with `weights_only=True`: tensors and plain values only.

    The data dir is not trusted code: a state file that needs any other class to unpickle (a
    `__reduce__` payload, say) is refused before anything in it runs.
    """
    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UnsafeCheckpoint(
            f"{path}: refused to load this checkpoint state: it holds more than tensors and plain values "
            f"({first}). It was not written by ladder; delete that checkpoint directory to resume from an "
            "earlier one, or create a new job.",
            code="unsafe_checkpoint",
        ) from None


def remove_partial(job_dir: Path) -> int:
    """Remove the temporary directories a crash left in the middle of a save; returns how many.

    Call only when no worker is writing this job (it ended, or it is not running): the
    directories are a live worker's work in progress otherwise.
    """
    removed = 0
    for root, pattern in ((job_dir / "checkpoints", ".tmp-step-*"), (job_dir, ".tmp-adapter-*")):
        if root.is_dir():
            for p in root.glob(pattern):
                shutil.rmtree(p, ignore_errors=True)
                removed += 1
    return removed


def copy_adapter(checkpoint: Path, dest: Path) -> None:
    """The peft adapter files of a checkpoint (not its trainer state or markers) into dest."""
    for f in checkpoint.iterdir():
        if f.is_file() and f.name not in (STATE, COMPLETE, "metrics.json"):
            shutil.copy2(f, dest / f.name)


def metrics_of(path: Path) -> dict:
    try:
        return json.loads((path / "metrics.json").read_text())
    except (OSError, ValueError):
        return {}


def _prune_state(job_dir: Path) -> None:
    done = [p for p in complete(job_dir) if (p / STATE).exists()]
    for p in done[:-KEEP_STATE]:
        (p / STATE).unlink(missing_ok=True)
