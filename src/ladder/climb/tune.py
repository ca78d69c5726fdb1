"""The fine-tune rung: a LoRA job on the training set through the fine-tuning service, followed live."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ladder.data.formats import write_jsonl
from ladder.evals.testset import TestItem
from ladder.settings import get_settings
from ladder.store.db import DEFAULT_PROJECT


@dataclass
class TuneOutcome:
    model: str | None
    job_id: str | None
    seconds: float = 0.0
    trained_tokens: int = 0
    cost_usd: float = 0.0
    loss: list[tuple[int, float]] = field(default_factory=list)
    error: str | None = None
    # The task metric on the validation slice at each eval step, e.g. ("valid_accuracy", [(12, 0.81), ...]).
    metric_name: str | None = None
    metric: list[tuple[int, float]] = field(default_factory=list)
    best_step: int | None = None  # the checkpoint the tuned model is (best metric, ties: lower loss)


def training_examples(train: list[TestItem], system: str, frame: Callable[[str], str] = str) -> list[dict]:
    """The zero-shot rung's system text and input framing, so the tuned model is served the prompt it learned."""
    pre = [{"role": "system", "content": system}] if system else []
    out = []
    for t in train:
        turns = [m for m in t.messages if m["role"] != "system"]
        turns = turns[:-1] + [{"role": "user", "content": frame(turns[-1]["content"])}]
        out.append({"messages": pre + turns + [{"role": "assistant", "content": t.reference}]})
    return out


def task_hyperparameters(parser) -> dict:
    """The job's task spec from the rung's output parser, so training measures what will be served."""
    if parser is None:
        return {}
    if parser.kind == "label":
        return {"task": "classification", "labels": list(parser.labels)}
    if parser.kind == "json":
        return {"task": "extraction", "schema": parser.schema}
    return {}


def _create(train, system, frame, model, workdir, hyperparameters, seed, project_id, parser):
    from ladder.store import files
    from ladder.tuning import service as tuning

    path = write_jsonl(training_examples(train, system, frame), workdir / "train.jsonl")
    upload = files.upload_path(path, "fine-tune", project_id)  # the service takes file ids, never paths
    hp = {**task_hyperparameters(parser), **(hyperparameters or {})}
    return tuning.create_job(
        upload.id, model=model, suffix="climb", hyperparameters=hp, seed=seed, project_id=project_id
    )


def fine_tune(
    train: list[TestItem],
    system: str,
    *,
    model: str,
    workdir: Path,
    hyperparameters: dict | None,
    frame: Callable[[str], str] = str,
    seed: int = 0,
    progress: Callable[[str, int | None], Callable] | None = None,
    project_id: str = DEFAULT_PROJECT,
    parser=None,
    job_id: str | None = None,
    on_job: Callable[[str], None] | None = None,
) -> TuneOutcome:
    """Run one job to the end. `progress(description, total)` returns advance(n, total=, **fields).

    The service holds a validation slice out of `train` (never the test set); with the rung's
    `parser` the job measures the task metric on it, stops early and returns its best checkpoint.
    `job_id` follows a job started before (a climb's rung task run again after its worker died: the
    job, durable itself, is not started twice); `on_job(id)` hears of a job just created.
    """
    from ladder.tuning import service as tuning

    job = tuning.get_job(job_id, project_id) if job_id else None
    if job is None:
        job = _create(train, system, frame, model, workdir, hyperparameters, seed, project_id, parser)
        if on_job is not None:
            on_job(job.id)
    tuning.ensure_worker()
    loss: list[tuple[int, float]] = []
    metric: list[tuple[int, float]] = []
    names: list[str] = []
    best: list[int] = []
    advance = progress(f"fine-tune {job.id[-8:]}", job.resolved.get("total_steps")) if progress else None
    done = [0]

    def on_event(ev) -> None:
        data = ev.data or {}
        if ev.type == "metrics" and "step" in data:
            if "train_loss" in data:
                loss.append((int(data["step"]), float(data["train_loss"])))
            for key in ("valid_accuracy", "valid_f1"):
                if key in data:
                    metric.append((int(data["step"]), float(data[key])))
                    names[:] = [key]
            if "best_step" in data:
                best[:] = [int(data["best_step"])]
            if advance:
                advance(
                    int(data["step"]) - done[0], total=data.get("total_steps"), loss=float(data.get("train_loss", 0.0))
                )
            done[0] = int(data["step"])

    job = tuning.wait(job.id, on_event=on_event, project_id=project_id)
    seconds = (job.finished_at or 0) - (job.started_at or job.created_at)
    tokens = int(job.trained_tokens or 0)
    cost = tokens / 1000 * get_settings().price_for(model).trained_per_1k
    if job.status != "succeeded" or not job.fine_tuned_model:
        err = (job.error or {}).get("message") if isinstance(job.error, dict) else job.error
        return TuneOutcome(None, job.id, seconds, tokens, cost, loss, f"job {job.id} {job.status}: {err}")
    name = names[0] if names else None
    return TuneOutcome(
        job.fine_tuned_model, job.id, seconds, tokens, cost, loss, None, name, metric, best[0] if best else None
    )
