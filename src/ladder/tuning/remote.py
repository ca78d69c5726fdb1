"""A fine-tuning job's files in the blob store (LADDER_BLOB_URL), so any machine can resume or serve it.

Layout: `<blob url>/tuning/<job id>/{train,valid}.jsonl`, `.../checkpoints/step-NNNNNNN/` (each with
its COMPLETE marker written last) and `.../adapter/` (the tuned model). Without LADDER_BLOB_URL every
function here does nothing and the job's files live only under its local job dir.
"""

from __future__ import annotations

from pathlib import Path

from ladder.store import blob_dirs
from ladder.tuning import checkpoints

DATA_FILES = ("train.jsonl", "valid.jsonl")


def job_url(job_id: str) -> str | None:
    return blob_dirs.remote_url("tuning", job_id)


def push_data(job_id: str, d: Path) -> None:
    """The job's normalised data files, written by create_job, for a worker on another machine."""
    url = job_url(job_id)
    if url:
        for name in DATA_FILES:
            if (d / name).is_file():
                blob_dirs.upload_file(d / name, f"{url}/{name}")


def pull_data(job_id: str, d: Path) -> None:
    url = job_url(job_id)
    if url:
        for name in DATA_FILES:
            if not (d / name).is_file():
                blob_dirs.download_file(f"{url}/{name}", d / name)


def push_checkpoint(job_id: str, path: Path) -> str:
    """Upload a complete local checkpoint and prune optimizer state remotely; its URL (or path, unset)."""
    url = job_url(job_id)
    if not url:
        return str(path)
    dest = blob_dirs.upload_dir(path, f"{url}/checkpoints/{path.name}")
    _prune_state(url)
    return dest


def _prune_state(url: str) -> None:
    """The same rule as local checkpoints: optimizer state only on the newest KEEP_STATE."""
    root = f"{url}/checkpoints"
    with_state = blob_dirs.complete_children(root, with_file=checkpoints.STATE)
    for name in with_state[: -checkpoints.KEEP_STATE]:
        blob_dirs.delete_file(f"{root}/{name}/{checkpoints.STATE}")


def _step(name: str) -> int:
    return int(name.removeprefix("step-"))


def pull_resumable(job_id: str, d: Path) -> int | None:
    """Fetch the newest remote resumable checkpoint when it is newer than any local one; its step.

    The checkpoint the final adapter would be copied from (the best so far) comes too, without its
    optimizer state, so a job finished on this machine returns the same model as one never moved.
    """
    url = job_url(job_id)
    if not url:
        return None
    root = f"{url}/checkpoints"
    remote = blob_dirs.complete_children(root, with_file=checkpoints.STATE)
    local = checkpoints.latest_resumable(d)
    if not remote or (local is not None and _step(local.name) >= _step(remote[-1])):
        return None
    newest = remote[-1]
    blob_dirs.download_dir(f"{root}/{newest}", d / "checkpoints" / newest)
    best = checkpoints.load_state(d / "checkpoints" / newest / checkpoints.STATE).get("best") or {}
    best_step = int(best.get("step", 0))
    if best_step and best_step != _step(newest):
        best_dir = checkpoints.ckpt_dir(d, best_step)
        if not (best_dir / checkpoints.COMPLETE).exists() and best_dir.name in blob_dirs.complete_children(root):
            blob_dirs.download_dir(f"{root}/{best_dir.name}", best_dir, skip=(checkpoints.STATE,))
    return _step(newest)


def push_adapter(job_id: str, adapter_dir: Path) -> str:
    """Upload the tuned model's adapter; the location to register (its URL, or the local path unset)."""
    url = job_url(job_id)
    if not url:
        return str(adapter_dir)
    return blob_dirs.upload_dir(adapter_dir, f"{url}/adapter")
