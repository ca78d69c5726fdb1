"""The tuning worker (`python -m ladder.tuning.worker`): runs queued jobs one at a time, holding a lease."""

from __future__ import annotations

import errno
import json
import signal
import threading
import time
import uuid
from contextlib import suppress
from pathlib import Path

from ladder.errors import Conflict, LadderError
from ladder.store.db import get_db
from ladder.tuning import checkpoints, jobs, leases, pause_points, remote, worker_ctl

IDLE_EXIT_S = 5.0
BEAT_S = 1.0


def _read_jsonl(path: Path) -> list[list[dict]]:
    if not path.exists():
        return []
    return [
        # split("\n"), not splitlines(): write_jsonl keeps U+2028 and U+0085 inside strings as they are
        json.loads(line)["messages"]
        for line in path.read_text(encoding="utf-8").split("\n")
        if line.strip()
    ]


def run_job(job: jobs.Job, stop: threading.Event | None = None) -> jobs.Job:
    """Train one claimed (running) job in this process and record the outcome on the job."""
    from ladder.tuning.service import job_dir, tuned_model_name

    stop = stop or threading.Event()
    db = get_db()
    hp, d = job.resolved, job_dir(job.id)
    name = tuned_model_name(job.model, job.suffix, job.id)
    # The worker id that claimed it: every outcome is written only while the job is still ours.
    owner = jobs.worker_of(job.id, db)
    try:
        return _run(job, stop, db, hp, d, name, owner)
    finally:
        # This worker writes nothing more; its half-written directories are garbage now
        # (unless the job was reclaimed and another worker is writing it).
        holder = jobs.worker_of(job.id, db)
        if holder is None or holder == owner:
            checkpoints.remove_partial(d)


def _run(job: jobs.Job, stop: threading.Event, db, hp: dict, d: Path, name: str, owner: str) -> jobs.Job:
    import torch
    from transformers import AutoTokenizer

    from ladder.models import registry
    from ladder.models.hf import hf_dir
    from ladder.store.usage import UsageRecord, record
    from ladder.tuning import trainer
    from ladder.tuning.encode import encode_all
    from ladder.tuning.hparams import TASK_KEYS
    from ladder.tuning.task_metric import TaskMeter

    t_start = time.time()

    def on_metrics(m: dict) -> None:
        msg = f"Step {m['step']}/{m['total_steps']}: training loss={m['train_loss']:.4f}"
        if "valid_loss" in m:
            msg += f", validation loss={m['valid_loss']:.4f}"
        for key, label in (("valid_accuracy", "validation accuracy"), ("valid_f1", "validation field F1")):
            if key in m:
                msg += f", {label}={m[key]:.3f}"
        with db.tx():
            jobs.add_event(job.id, msg, type="metrics", data=m, db=db)
            jobs.update(
                job.id,
                db,
                estimated_finish=time.time() + m["eta_seconds"],
                trained_tokens=m["trained_tokens"],
            )
        pause_points.reached("after_step", job=job.id, step=m["step"])

    def on_checkpoint(step: int, epoch: float, path: Path, metrics: dict) -> None:
        pause_points.reached("checkpoint_renamed", job=job.id, step=step)
        ck_name = f"{name}:ckpt-step-{step}"
        where = remote.push_checkpoint(job.id, path)  # with LADDER_BLOB_URL: uploaded before its row exists
        with db.tx():
            jobs.add_checkpoint(job.id, step, epoch, where, ck_name, metrics, db=db)
            with suppress(Conflict):  # already registered by an earlier attempt
                registry.add_tuned(ck_name, job.model, where, job.project_id, {"job": job.id, "step": step}, db=db)
            jobs.add_event(job.id, f"Checkpoint saved at step {step}.", db=db)

    cb = trainer.Callbacks(
        metrics=on_metrics,
        checkpoint=on_checkpoint,
        should_stop=stop.is_set,
        message=lambda level, msg: jobs.add_event(job.id, msg, level=level),
    )
    try:
        # Another machine may have run this job: its data and newest checkpoint come from the blob store.
        remote.pull_data(job.id, d)
        pulled = remote.pull_resumable(job.id, d)
        resumed = (d / "checkpoints").is_dir()
        jobs.add_event(job.id, "Fine-tuning job resumed." if resumed else "Fine-tuning job started.")
        if pulled is not None:
            jobs.add_event(job.id, f"Fetched the checkpoint at step {pulled} from the blob store.")
        # A crash between a checkpoint's rename and its row leaves it on disk only: list it now.
        known = {c.step for c in jobs.checkpoints(job.id, db)}
        for path in checkpoints.complete(d):
            m = checkpoints.metrics_of(path)
            if m.get("step") and m["step"] not in known:
                on_checkpoint(
                    m["step"], m.get("epoch", 0.0), path, {k: v for k, v in m.items() if k not in ("step", "epoch")}
                )
        base = registry.get_model(job.model, job.project_id)
        base_dir = hf_dir(base, job.project_id)
        tok = AutoTokenizer.from_pretrained(base_dir)
        pause_points.reached("loading_data", job=job.id)
        pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
        maxlen = hp["max_seq_length"]
        train = encode_all(tok, _read_jsonl(d / "train.jsonl"), maxlen)
        valid_conversations = _read_jsonl(d / "valid.jsonl")
        valid = encode_all(tok, valid_conversations, maxlen)
        meter = None
        if valid_conversations and hp.get("task") in ("classification", "extraction"):
            meter = TaskMeter({k: hp.get(k) for k in TASK_KEYS}, valid_conversations, tok)
        cut = sum(1 for e in train if len(e.input_ids) >= maxlen)
        if cut:
            jobs.add_event(
                job.id, f"{cut} training example(s) were truncated to max_seq_length={maxlen}.", level="warn"
            )
        result = trainer.train(d, base_dir, train, valid, hp, job.seed, pad, cb, meter)
        adapter_at = remote.push_adapter(job.id, result.adapter_dir)
    except trainer.StopRequested:
        if jobs.load(job.id, None, db).cancel_requested:
            with db.tx():
                if jobs.finish(job.id, "cancelled", db, owner=owner):
                    jobs.add_event(job.id, "Job cancelled.", db=db)
        else:  # this worker was asked to stop (or lost its lease: then the job is not ours to touch)
            leases.release(job.id, owner, db)
        return jobs.load(job.id, None)
    except OSError as e:
        if e.errno in (errno.ENOSPC, errno.EDQUOT):
            jobs.fail(
                job.id,
                "disk_full",
                f"the disk is full ({e}); free space under {d.parent} and run "
                f"`{jobs.resume_command(job.id, job.project_id)}` - earlier checkpoints are intact",
                owner=owner,
            )
        else:
            jobs.fail(job.id, "io_error", f"could not read or write job files: {e}", owner=owner)
        return jobs.load(job.id, None)
    except (MemoryError, torch.OutOfMemoryError) as e:
        torch.cuda.empty_cache() if torch.cuda.is_available() else None
        jobs.fail(
            job.id,
            "out_of_memory",
            f"out of memory ({type(e).__name__}); lower micro_batch_size or max_seq_length and create a"
            f" new job, or run `{jobs.resume_command(job.id, job.project_id)}` - earlier checkpoints are"
            " intact",
            owner=owner,
        )
        return jobs.load(job.id, None)
    except LadderError as e:  # a problem meant for people (an unsafe checkpoint, a missing model)
        jobs.fail(job.id, e.code or "training_error", e.message, owner=owner)
        return jobs.load(job.id, None)
    except Exception as e:  # any other failure is reported on the job, never left running
        jobs.fail(job.id, "training_error", f"{type(e).__name__}: {e}", owner=owner)
        return jobs.load(job.id, None)
    pause_points.reached("adapter_saved", job=job.id)
    # One transaction: the model, the usage and the status change together, so a kill at any
    # point leaves either none of them (the next attempt redoes the last step, or nothing) or all.
    with db.tx():
        if not jobs.owned_by(job.id, owner, db):
            return jobs.load(job.id, None)  # the lease was reclaimed; whoever holds it now finishes
        # The model row commits only with the status change below, so it cannot exist for a running job;
        # a data dir from an older ladder (separate steps) may still hold one: the same adapter, keep it.
        with suppress(Conflict):
            registry.add_tuned(
                name,
                job.model,
                adapter_at,
                job.project_id,
                {"job": job.id, "seed": job.seed, "hyperparameters": hp, "best_step": result.best_step},
                db=db,
            )
        record(
            UsageRecord(
                model=job.model,
                kind="train",
                trained_tokens=result.trained_tokens,
                latency_ms=(time.time() - t_start) * 1000,
                project_id=job.project_id,
                source=job.id,
            ),
            db=db,
        )
        jobs.finish(job.id, "succeeded", db, fine_tuned_model=name, trained_tokens=result.trained_tokens)
        jobs.add_event(job.id, f"The job has successfully completed: {name}", db=db)
        pause_points.reached("registering", job=job.id)
    return jobs.load(job.id, None)


def sweep_partials(db=None) -> int:
    """Remove half-written checkpoint directories of every job that no worker is running."""
    from ladder.tuning.service import job_dir

    db = db or get_db()
    removed = 0
    for job_id in jobs.ids_with_status(tuple(s for s in jobs.STATUSES if s != "running"), db=db):
        d = job_dir(job_id)
        if d.is_dir():
            removed += checkpoints.remove_partial(d)
    return removed


class _Beat(threading.Thread):
    """Renews the worker's slot and the job's lease; sets `stop` on cancel or a lost lease."""

    def __init__(self, worker_id: str):
        super().__init__(daemon=True)
        self.worker_id, self.job_id, self.stop = worker_id, None, threading.Event()
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.wait(BEAT_S):
            try:
                worker_ctl.heartbeat(self.worker_id)
                if self.job_id:
                    ours, cancel = leases.renew_lease(self.job_id, self.worker_id)
                    if cancel or not ours:
                        self.stop.set()
            except Exception:  # a busy db must not kill the heartbeat; the next beat retries
                pass


def main() -> int:
    worker_id = "worker-" + uuid.uuid4().hex[:12]
    if not worker_ctl.acquire_slot(worker_id):
        return 0
    beat = _Beat(worker_id)
    shutdown = threading.Event()

    def on_term(signum, frame) -> None:  # SIGTERM (supervisor stopping): stop at the next micro-batch
        shutdown.set()
        beat.stop.set()

    signal.signal(signal.SIGTERM, on_term)
    beat.start()
    sweep_partials()  # no worker runs these jobs: a crash's half-written checkpoints go now
    idle_since = time.monotonic()
    try:
        while not shutdown.is_set():
            leases.reclaim_stale()
            job = leases.claim_next(worker_id)
            if job is None:
                if time.monotonic() - idle_since > IDLE_EXIT_S and worker_ctl.release_if_idle(worker_id):
                    return 0
                shutdown.wait(0.5)
                continue
            pause_points.reached("claimed", job=job.id)
            beat.stop.clear()
            if shutdown.is_set():
                beat.stop.set()
            beat.job_id = job.id
            run_job(job, beat.stop)
            beat.job_id = None
            idle_since = time.monotonic()
        worker_ctl.release_slot(worker_id)
        return 0
    finally:
        beat.halt.set()


if __name__ == "__main__":
    raise SystemExit(main())
