"""The fine-tuning API the CLI, the HTTP server and the ladder call: create, follow, cancel, resume jobs."""

from __future__ import annotations

import hashlib
import random
import re
import time
from collections.abc import Callable
from pathlib import Path

from ladder.errors import InvalidInput, LadderError
from ladder.settings import get_settings
from ladder.store import files
from ladder.store.db import DEFAULT_PROJECT, get_db
from ladder.tuning import checkpoints, jobs, leases, remote
from ladder.tuning.hparams import resolve, validation_count
from ladder.tuning.jobs import Checkpoint, Event, Job
from ladder.tuning.task_metric import resolve_task
from ladder.tuning.worker_ctl import ensure_worker, worker_alive

__all__ = [
    "create_job",
    "get_job",
    "list_jobs",
    "cancel_job",
    "resume_job",
    "list_events",
    "list_checkpoints",
    "ensure_worker",
    "worker_alive",
    "wait",
    "job_dir",
    "tuned_model_name",
    "Job",
    "Event",
    "Checkpoint",
]

SUFFIX_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,39}$")


def job_dir(job_id: str) -> Path:
    return get_settings().shared_dir / "tuning" / job_id


def tuned_model_name(base: str, suffix: str | None, job_id: str) -> str:
    return f"ft:{base}:{suffix or 'tuned'}:{job_id}"


# A job is `validating_files` only while create_job runs (seconds); one older than this was left by
# a process that died mid-request, and fail_stale_validations ends it.
VALIDATION_TIMEOUT_S = 600.0


def fail_stale_validations(max_age_s: float = VALIDATION_TIMEOUT_S) -> list[str]:
    """Fail every job stuck in `validating_files` for longer than max_age_s (call at start-up); their ids."""
    stale = jobs.ids_with_status(("validating_files",), older_than=time.time() - max_age_s)
    for job_id in stale:
        jobs.fail(
            job_id,
            "validation_interrupted",
            "validating the files was interrupted (the server stopped); create the job again",
        )
    return stale


def _versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for pkg in ("ladder", "torch", "transformers", "peft", "safetensors"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = None
    return out


def hold_out_validation(train: list, asked, seed: int) -> tuple[list, list]:
    """(train, validation): a slice of the training examples, stratified by label where they are labels.

    The split code keeps repeated inputs on one side, so the slice measures generalisation.
    """
    from ladder.data.split import split_examples
    from ladder.data.stats import label_counts

    k = validation_count(asked, len(train))
    if not k:
        return train, []
    counts = label_counts(train)
    # Stratify only when every label can keep an example on the training side.
    stratify = counts is not None and min(counts.values()) >= 2
    return split_examples(train, k, stratify=stratify, seed=seed)


def create_job(
    training_file: str,
    *,
    validation_file: str | None = None,
    model: str | None = None,
    suffix: str | None = None,
    hyperparameters: dict | None = None,
    seed: int | None = None,
    project_id: str = DEFAULT_PROJECT,
    input_col: str | None = None,
    output_col: str | None = None,
    system: str | None = None,
) -> Job:
    """Validate the data and queue a LoRA job (status queued), or raise InvalidInput naming every problem.

    `training_file`/`validation_file`: ids of the project's files (`file-…`), never paths; the CLI
    uploads a user's path first (store.files.upload_path). A job whose files fail validation ends
    `failed` with the message, which is raised too.
    """
    from ladder.data.formats import label_of, read_dataset, write_jsonl
    from ladder.data.validate import HARD_MINIMUM
    from ladder.models.registry import get_model

    model = model or get_settings().default_model
    spec = get_model(model, project_id)
    if spec.backend == "remote" or spec.is_tuned:
        raise InvalidInput(f"{model} cannot be fine-tuned here: pick a local base model", param="model")
    if suffix is not None and not SUFFIX_RE.match(suffix):
        raise InvalidInput("suffix must be 1-40 letters, digits, '-' or '_'", param="suffix")
    seed = int(seed) if seed is not None else random.randrange(2**31)
    train_rec = files.resolve_file(training_file, project_id, "training_file")
    val_rec = files.resolve_file(validation_file, project_id, "validation_file") if validation_file else None
    fail_stale_validations()
    job = jobs.insert_job(
        project_id=project_id,
        model=model,
        suffix=suffix,
        training_file=train_rec.id,
        validation_file=val_rec.id if val_rec else None,
        hyperparameters=dict(hyperparameters or {}),
        seed=seed,
    )
    jobs.add_event(job.id, f"Validating training file: {train_rec.id}")
    try:
        cols = {"input_col": input_col, "output_col": output_col, "system": system}
        # Read the stored bytes in place, under the user's file name: messages name their file.
        train = read_dataset(train_rec.local_path(), name=train_rec.filename, **cols)
        if len(train) < HARD_MINIMUM:
            raise InvalidInput(
                f"{train_rec.filename}: {len(train)} example(s); fine-tuning needs at least "
                f"{HARD_MINIMUM} (OpenAI's floor). Use few-shot prompting for so little data.",
                code="too_few_examples",
                param="training_file",
            )
        valid = read_dataset(val_rec.local_path(), name=val_rec.filename, **cols) if val_rec else []
        held_out = 0
        if not val_rec:  # no validation file: a stratified slice of the training set (never the test set)
            train, valid = hold_out_validation(train, (hyperparameters or {}).get("validation_split"), seed)
            held_out = len(valid)
        hp = resolve(hyperparameters, len(train), has_validation=bool(valid))
        hp.update(resolve_task(hp, [label_of(e) for e in train]))
        d = job_dir(job.id)
        write_jsonl(train, d / "train.jsonl")
        write_jsonl(valid, d / "valid.jsonl")
        remote.push_data(job.id, d)  # with LADDER_BLOB_URL: a worker on any machine reads them there
    except LadderError as e:
        jobs.fail(job.id, e.code or "invalid_training_file", e.message)
        raise
    except BaseException as e:
        # Whatever went wrong, the job must not stay `validating_files`.
        jobs.fail(job.id, "internal_error", f"validating the files failed ({type(e).__name__}); see the log")
        raise
    repro = {
        "seed": seed,
        "training_file_sha256": train_rec.sha256,
        "validation_file_sha256": val_rec.sha256 if val_rec else None,
        "normalised_train_sha256": hashlib.sha256((d / "train.jsonl").read_bytes()).hexdigest(),
        "n_train": len(train),
        "n_valid": len(valid),
        "n_valid_held_out_of_training": held_out,
        "libraries": _versions(),
        "base_model": model,
        "base_model_path": spec.path,
        "hyperparameters": hp,
    }
    jobs.update(job.id, status="queued", resolved=hp, repro=repro)
    jobs.add_event(
        job.id,
        f"Files validated ({len(train)} training, {len(valid)} validation examples"
        f"{', held out of the training file' if held_out else ''}); "
        f"{hp['n_epochs']} epochs x {hp['steps_per_epoch']} steps, batch {hp['batch_size']}, "
        f"lr {hp['learning_rate']:.2g}. Job queued.",
    )
    return jobs.load(job.id, project_id)


def get_job(job_id: str, project_id: str = DEFAULT_PROJECT) -> Job:
    leases.reclaim_stale()
    return jobs.load(job_id, project_id)


def list_jobs(project_id: str = DEFAULT_PROJECT, after: str | None = None, limit: int = 20) -> list[Job]:
    """Newest first; `after` is a job id to page from."""
    leases.reclaim_stale()
    return jobs.list_jobs(project_id, after, max(1, min(limit, 100)))


def cancel_job(job_id: str, project_id: str = DEFAULT_PROJECT) -> Job:
    """Queued jobs are cancelled at once; a running job stops within seconds (its worker sees the flag)."""
    db = get_db()
    job = jobs.load(job_id, project_id, db)
    jobs.require_status(job, ("validating_files", "queued", "running"), "cancel")
    with db.tx():
        if job.status == "running":
            jobs.update(job_id, db, cancel_requested=1)
            jobs.add_event(job_id, "Cancellation requested.", db=db)
        else:
            jobs.finish(job_id, "cancelled", db)
            jobs.add_event(job_id, "Job cancelled.", db=db)
    if job.status != "running":  # no worker writes it: what a killed attempt half-wrote goes now
        checkpoints.remove_partial(job_dir(job_id))
    leases.reclaim_stale(db)
    return jobs.load(job_id, project_id, db)


def resume_job(job_id: str, project_id: str = DEFAULT_PROJECT) -> Job:
    """Queue a failed or cancelled job again; it continues from its last complete checkpoint."""
    job = jobs.load(job_id, project_id)
    jobs.require_status(job, ("failed", "cancelled"), "resume")
    if not job.resolved:
        raise InvalidInput(f"job {job_id} failed while validating its files; fix the data and create a new job")
    db = get_db()
    with db.tx():
        # checked again under the write lock: two resumes at once queue it once
        jobs.require_status(jobs.load(job_id, project_id, db), ("failed", "cancelled"), "resume")
        jobs.update(job_id, db, status="queued", cancel_requested=0, error=None, finished_at=None, attempts=0)
        jobs.add_event(job_id, "Job resumed; it continues from its last complete checkpoint.", db=db)
    return jobs.load(job_id, project_id)


def list_events(
    job_id: str, project_id: str = DEFAULT_PROJECT, after: str | None = None, limit: int = 20
) -> list[Event]:
    """Newest first, as OpenAI lists them; `after` is an event id (older ones are returned)."""
    jobs.load(job_id, project_id)
    before = jobs.event_seq(after) if after else None
    rows = jobs.events(job_id, limit=100000 if before else max(1, limit), newest_first=True)
    if before is not None:
        rows = [e for e in rows if e.seq < before][:limit]
    return rows


def list_checkpoints(
    job_id: str, project_id: str = DEFAULT_PROJECT, after: str | None = None, limit: int = 10
) -> list[Checkpoint]:
    """Newest (highest step) first."""
    jobs.load(job_id, project_id)
    rows = jobs.checkpoints(job_id)
    if after:
        ids = [c.id for c in rows]
        rows = rows[ids.index(after) + 1 :] if after in ids else []
    return rows[:limit]


def wait(
    job_id: str,
    on_event: Callable[[Event], None] | None = None,
    poll: float = 0.5,
    project_id: str = DEFAULT_PROJECT,
    timeout: float | None = None,
) -> Job:
    """Follow a job until it is succeeded, failed or cancelled, calling on_event for each new event."""
    seq, t0, last_check = 0, time.monotonic(), 0.0
    while True:
        for ev in jobs.events(job_id, after_seq=seq):
            seq = ev.seq
            if on_event:
                on_event(ev)
        job = jobs.load(job_id, project_id)
        if job.done:
            for ev in jobs.events(job_id, after_seq=seq):
                seq = ev.seq
                if on_event:
                    on_event(ev)
            return job
        if time.monotonic() - last_check > 5:
            last_check = time.monotonic()
            leases.reclaim_stale()
            if job.status == "queued" and not worker_alive():
                ensure_worker()
        if timeout is not None and time.monotonic() - t0 > timeout:
            return job
        time.sleep(poll)
