"""The start-up sweep removes what crashed writers left, and nothing a live writer may still own."""

from __future__ import annotations

import os
import time
from pathlib import Path

from typer.testing import CliRunner

from ladder.store import files
from ladder.store.blobs import blob_path
from ladder.store.db import get_db
from ladder.store.sweep import BLOB_GRACE_S, TMP_GRACE_S, sweep


def _age(path: Path, seconds: float) -> Path:
    t = time.time() - seconds
    for p in [path, *path.rglob("*")] if path.is_dir() else [path]:
        os.utime(p, (t, t))
    return path


def _orphan_blob(blob_id: str, data: bytes = b"x" * 1000) -> Path:
    """Bytes at a blob id with no `files` row: what a kill between the write and the commit leaves."""
    p = blob_path(blob_id)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(data)
    return p


def test_old_temp_files_go_young_ones_stay(ladder_home):
    shard = ladder_home / "blobs" / "fi"
    shard.mkdir(parents=True)
    old = shard / ".tmp-abc123"  # a blob write killed half way
    old.write_bytes(b"p" * 2048)
    _age(old, TMP_GRACE_S + 60)
    young = shard / ".tmp-def456"
    young.write_bytes(b"partial")
    pid_style = ladder_home / "exports" / ".model.gguf.tmp-4242"
    pid_style.parent.mkdir(parents=True)
    pid_style.write_bytes(b"g")
    _age(pid_style, TMP_GRACE_S + 60)
    keep = ladder_home / "exports" / "model.gguf"
    keep.write_bytes(b"finished")
    _age(keep, 10 * TMP_GRACE_S)

    report = sweep()
    assert sorted(report.tmp) == sorted([old, pid_style])
    assert not old.exists() and not pid_style.exists()
    assert young.exists() and keep.exists()
    if get_db().engine == "sqlite":
        assert (ladder_home / "ladder.db").exists()


def test_a_temp_dir_is_judged_by_its_newest_file(ladder_home):
    ckpts = ladder_home / "tuning" / "ftjob-x" / "checkpoints"
    busy = ckpts / ".tmp-step-0000040-aaaa"
    busy.mkdir(parents=True)
    (busy / "adapter_config.json").write_text("{}")
    _age(busy, TMP_GRACE_S + 60)
    (busy / "adapter_model.safetensors").write_bytes(b"w" * 4096)  # being written right now
    dead = ckpts / ".tmp-step-0000020-bbbb"
    dead.mkdir()
    (dead / "adapter_model.safetensors").write_bytes(b"w" * 4096)
    _age(dead, TMP_GRACE_S + 60)

    report = sweep()
    assert report.tmp == [dead] and report.bytes_freed == 4096
    assert busy.is_dir() and not dead.exists()


def test_unreferenced_blobs_older_than_the_grace_go(ladder_home):
    kept = files.create(b"referenced", "a.jsonl", "eval")
    _age(Path(kept.blob_path), 10 * BLOB_GRACE_S)
    orphan = _age(_orphan_blob("file-orphan1"), BLOB_GRACE_S + 60)
    fresh = _orphan_blob("file-inflight")  # written a moment ago; its row may be about to commit elsewhere

    report = sweep()
    assert report.blobs == [orphan] and report.bytes_freed == 1000
    assert not orphan.exists() and fresh.exists() and Path(kept.blob_path).exists()
    assert files.get(kept.id).read_bytes() == b"referenced"


def test_rows_whose_bytes_are_gone_are_reported_not_deleted(ladder_home):
    rec = files.create(b"soon gone", "b.jsonl", "eval")
    Path(rec.blob_path).unlink()
    report = sweep()
    assert report.missing_blobs == [rec.id] and rec.id in report.summary()
    assert files.get(rec.id).id == rec.id  # the row stays for a person to look at


def test_partial_checkpoints_of_finished_jobs_go_at_any_age(ladder_home):
    from ladder.tuning import jobs
    from ladder.tuning.service import job_dir

    rec = files.create(b'{"messages": []}\n', "t.jsonl", "fine-tune")
    mk = dict(
        project_id="proj-default",
        model="m",
        suffix=None,
        training_file=rec.id,
        validation_file=None,
        hyperparameters={},
        seed=1,
    )
    done, queued = jobs.insert_job(**mk), jobs.insert_job(**mk)
    get_db().execute("UPDATE ft_jobs SET status='cancelled' WHERE id=?", (done.id,))
    partial = {}
    for job in (done, queued):
        p = job_dir(job.id) / "checkpoints" / ".tmp-step-0000010-zz"
        p.mkdir(parents=True)
        (p / "adapter_model.safetensors").write_bytes(b"w")
        partial[job.id] = p

    report = sweep()
    assert report.checkpoints == 1
    assert not partial[done.id].exists()
    assert partial[queued.id].exists()  # a worker may be about to resume it: only the age rule applies


def test_admin_sweep_command(ladder_home):
    from ladder.cli.main import app

    young_orphan = _orphan_blob("file-young")
    out = CliRunner().invoke(app, ["admin", "sweep"])
    assert out.exit_code == 0, out.output
    assert "0 orphan blob(s)" in out.output and young_orphan.exists()
    out = CliRunner().invoke(app, ["admin", "sweep", "--no-grace"])
    assert out.exit_code == 0 and "1 orphan blob(s)" in out.output and not young_orphan.exists()
