"""CLI for fine-tuning: `ladder tune`, `ladder jobs list|show|events|checkpoints|cancel|resume`, `ladder export`."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.table import Column, Table

from ladder.cli.console import console, err_console, progress_bar
from ladder.cli.projects import ProjectOption, project_id

jobs_app = typer.Typer(help="Fine-tuning jobs: list, inspect, cancel, resume.", no_args_is_help=True)


def _auto_or(value: str | None, kind: type, flag: str):
    if value is None or value == "auto":
        return "auto"
    try:
        return kind(value)
    except ValueError:
        raise typer.BadParameter(f"{flag} must be 'auto' or a number, got {value!r}") from None


def _in(project: str | None) -> str:
    """The `--project` part of a command shown to the user, so that it works when pasted."""
    return f" --project {project}" if project else ""


def follow(job_id: str, project: str | None = None) -> int:
    """Show a job's events with a live bar (step, loss, tokens/s, ETA) until it ends; Ctrl-C detaches."""
    from ladder.tuning import service

    pid = project_id(project)
    job = service.get_job(job_id, pid)
    total = job.resolved.get("total_steps")
    state = {"step": 0}
    try:
        with progress_bar(f"tuning {job_id}", total, unit="steps") as advance:

            def on_event(ev) -> None:
                if ev.type == "metrics":
                    d = ev.data
                    fields = {"loss": d["train_loss"], "tok/s": round(d["tokens_per_second"])}
                    if "valid_loss" in d:
                        fields["val_loss"] = d["valid_loss"]
                    advance(max(0, d["step"] - state["step"]), total=d["total_steps"], **fields)
                    state["step"] = max(state["step"], d["step"])
                elif ev.level != "info" or "Checkpoint" not in ev.message:
                    style = {"warn": "yellow", "error": "bold red"}.get(ev.level, "dim")
                    err_console.print(f"[{style}]{ev.message}[/]", highlight=False)

            job = service.wait(job_id, on_event=on_event, project_id=pid)
    except KeyboardInterrupt:
        err_console.print(
            f"[yellow]detached; the job keeps running.[/] Follow it again with "
            f"`ladder jobs show {job_id}{_in(project)} --follow`, stop it with "
            f"`ladder jobs cancel {job_id}{_in(project)}`."
        )
        return 0
    if job.status == "succeeded":
        console.print(f"[green]succeeded[/]: {job.fine_tuned_model}  ({job.trained_tokens} trained tokens)")
        console.print(f"try it: ladder chat {job.fine_tuned_model}")
        return 0
    console.print(f"[red]{job.status}[/]" + (f": {job.error['message']}" if job.error else ""))
    return 1


def _file_id(ref: str, project: str, columns: dict) -> str:
    """A `file-…` id as given, else the user's own path uploaded first (the service takes ids only)."""
    from ladder.ids import is_id
    from ladder.store import files

    if is_id(ref, "file"):
        return ref
    return files.upload_path(ref, "fine-tune", project, columns).id


def tune_cmd(
    train: str = typer.Argument(..., help="Training data (chat JSONL, prompt/completion, CSV) or a file-… id."),
    validation: str = typer.Option(None, "--validation", "-v", help="Validation data for validation loss."),
    model: str = typer.Option(None, "--model", "-m", help="Base model (default: the default model)."),
    suffix: str = typer.Option(None, "--suffix", help="Name part of the tuned model: ft:<base>:<suffix>:<job>."),
    epochs: str = typer.Option("auto", "--epochs", help="auto (about 3, scaled to the data size) or N."),
    batch_size: str = typer.Option("auto", "--batch-size", help="auto or N examples per optimizer step."),
    lr_multiplier: str = typer.Option("auto", "--lr-multiplier", help="auto or X (1 = 2e-4 for LoRA)."),
    lora_r: int = typer.Option(None, "--lora-r", help="LoRA rank (default 16)."),
    lora_alpha: float = typer.Option(None, "--lora-alpha", help="LoRA alpha (default 2 x rank)."),
    max_length: int = typer.Option(None, "--max-length", help="Training sequence length in tokens (1024)."),
    scheduler: str = typer.Option(None, "--scheduler", help="cosine (default), linear or constant."),
    seed: int = typer.Option(None, "--seed", help="Seed for LoRA init, data order and dropout."),
    validation_split: str = typer.Option(
        "auto",
        "--validation-split",
        help="Without --validation: auto (10%, at least 20 where the data allows), a fraction, a count, or 0.",
    ),
    patience: int = typer.Option(
        None, "--early-stopping-patience", help="Stop after N evals without improvement (default 3; 0 = off)."
    ),
    input_col: str = typer.Option(None, "--input-col", help="Input column (CSV/JSONL with columns)."),
    output_col: str = typer.Option(None, "--output-col", help="Output column."),
    system: str = typer.Option(None, "--system", help="System prompt for examples that have none."),
    detach: bool = typer.Option(False, "--detach", "-d", help="Queue the job and return at once."),
    project: ProjectOption = None,
) -> None:
    """Fine-tune a LoRA adapter on your examples; the tuned model becomes usable everywhere."""
    from ladder.tuning import service

    pid = project_id(project)

    hp = {
        "n_epochs": _auto_or(epochs, int, "--epochs"),
        "batch_size": _auto_or(batch_size, int, "--batch-size"),
        "learning_rate_multiplier": _auto_or(lr_multiplier, float, "--lr-multiplier"),
        "validation_split": _auto_or(validation_split, float, "--validation-split"),
    }
    for key, value in (
        ("lora_r", lora_r),
        ("lora_alpha", lora_alpha),
        ("max_seq_length", max_length),
        ("scheduler", scheduler),
        ("early_stopping_patience", patience),
    ):
        if value is not None:
            hp[key] = value
    cols = {"input_col": input_col, "output_col": output_col, "system": system}
    train_id = _file_id(train, pid, cols)
    validation_id = _file_id(validation, pid, cols) if validation else None
    job = service.create_job(
        train_id,
        validation_file=validation_id,
        model=model,
        suffix=suffix,
        hyperparameters=hp,
        seed=seed,
        project_id=pid,
        **cols,
    )
    r = job.resolved
    console.print(
        f"job [bold]{job.id}[/] queued: {r['n_epochs']} epochs x {r['steps_per_epoch']} steps, "
        f"batch {r['batch_size']}, lr {r['learning_rate']:.2g}, LoRA r={r['lora_r']}, seed {job.seed}"
    )
    service.ensure_worker()
    if detach:
        console.print(f"follow it with `ladder jobs show {job.id}{_in(project)} --follow`")
        return
    raise typer.Exit(follow(job.id, project))


@jobs_app.command("list")
def list_cmd(
    limit: int = typer.Option(20, "--limit"),
    as_json: bool = typer.Option(False, "--json"),
    project: ProjectOption = None,
) -> None:
    """Fine-tuning jobs, newest first."""
    from ladder.tuning import service

    rows = service.list_jobs(project_id(project), limit=limit)
    if as_json:
        typer.echo(json.dumps([j.as_openai() for j in rows], indent=1))
        return
    t = Table(
        Column("id", no_wrap=True), "status", "model", Column("fine-tuned model", overflow="fold"), "trained tokens"
    )
    for j in rows:
        t.add_row(j.id, j.status, j.model, j.fine_tuned_model or "", str(j.trained_tokens or ""))
    console.print(t)


@jobs_app.command("show")
def show_cmd(
    job_id: str,
    follow_: bool = typer.Option(False, "--follow", "-f", help="Follow until it ends."),
    as_json: bool = typer.Option(False, "--json"),
    project: ProjectOption = None,
) -> None:
    """One job: status, hyperparameters chosen, reproducibility info, error."""
    from ladder.tuning import service

    pid = project_id(project)
    if follow_:
        service.get_job(job_id, pid)  # an unknown job is an error before any worker starts
        service.ensure_worker()
        raise typer.Exit(follow(job_id, project))
    job = service.get_job(job_id, pid)
    if as_json:
        typer.echo(json.dumps(job.as_openai(), indent=1))
        return
    console.print(f"[bold]{job.id}[/]  {job.status}  base {job.model}  seed {job.seed}")
    if job.fine_tuned_model:
        console.print(f"model: {job.fine_tuned_model}  trained tokens: {job.trained_tokens}")
    if job.error:
        console.print(f"[red]error[/] ({job.error['code']}): {job.error['message']}")
    keys = (
        "n_epochs",
        "batch_size",
        "micro_batch_size",
        "grad_accum",
        "learning_rate",
        "lora_r",
        "lora_alpha",
        "max_seq_length",
        "scheduler",
        "warmup_ratio",
        "total_steps",
        "checkpoint_every",
        "eval_every",
        "early_stopping_patience",
        "task",
    )
    console.print("hyperparameters: " + ", ".join(f"{k}={job.resolved[k]}" for k in keys if k in job.resolved))
    if job.repro:
        console.print(f"data sha256: {job.repro.get('training_file_sha256')}  libraries: {job.repro.get('libraries')}")


@jobs_app.command("events")
def events_cmd(
    job_id: str,
    limit: int = typer.Option(50, "--limit"),
    as_json: bool = typer.Option(False, "--json"),
    project: ProjectOption = None,
) -> None:
    """A job's events, oldest of the last LIMIT first."""
    from ladder.tuning import service

    rows = list(reversed(service.list_events(job_id, project_id(project), limit=limit)))
    if as_json:
        typer.echo(json.dumps([e.as_openai() for e in rows], indent=1))
        return
    for e in rows:
        style = {"warn": "yellow", "error": "red"}.get(e.level, "")
        console.print(f"[{style}]{e.level:5}[/] {e.message}" if style else f"{e.level:5} {e.message}", highlight=False)


@jobs_app.command("checkpoints")
def checkpoints_cmd(job_id: str, as_json: bool = typer.Option(False, "--json"), project: ProjectOption = None) -> None:
    """A job's checkpoints (each usable as a model name)."""
    from ladder.tuning import service

    rows = service.list_checkpoints(job_id, project_id(project), limit=1000)
    if as_json:
        typer.echo(json.dumps([c.as_openai() for c in rows], indent=1))
        return
    t = Table("step", "train loss", "valid loss", "model")
    for c in rows:
        vl = c.metrics.get("valid_loss")
        t.add_row(
            str(c.step),
            f"{c.metrics.get('train_loss', 0):.4f}",
            f"{vl:.4f}" if vl is not None else "",
            c.model_name or "",
        )
    console.print(t)


@jobs_app.command("cancel")
def cancel_cmd(job_id: str, project: ProjectOption = None) -> None:
    """Cancel a queued job at once, a running one within seconds."""
    from ladder.tuning import service

    pid = project_id(project)
    job = service.cancel_job(job_id, pid)
    if job.status == "running":
        job = service.wait(job_id, poll=0.2, timeout=30, project_id=pid)
    console.print(f"{job.id}: {job.status}")


@jobs_app.command("resume")
def resume_cmd(
    job_id: str, detach: bool = typer.Option(False, "--detach", "-d"), project: ProjectOption = None
) -> None:
    """Queue a failed or cancelled job again; it continues from its last complete checkpoint."""
    from ladder.tuning import service

    job = service.resume_job(job_id, project_id(project))
    service.ensure_worker()
    console.print(f"{job.id}: {job.status}")
    if not detach:
        raise typer.Exit(follow(job_id, project))


def export_cmd(
    model: str = typer.Argument(..., help="A tuned model (ft:…) or any local model."),
    fmt: str = typer.Option("gguf", "--format", help="merged (HF safetensors dir) or gguf (llama.cpp)."),
    out: Path = typer.Option(None, "--out", help="Output directory (default: under the data dir)."),
    quant: str = typer.Option("q8_0", "--quant", help="GGUF weights: f16 or q8_0."),
) -> None:
    """Export a tuned model as a merged HF model or a GGUF for the fast llama.cpp path."""
    from ladder.tuning import export

    if fmt == "merged":
        path = export.export_merged(model, out)
    elif fmt == "gguf":
        path = export.export_gguf(model, out, quant=quant)
    else:
        raise typer.BadParameter("--format must be merged or gguf")
    console.print(f"exported {model} -> {path}")


def register(app: typer.Typer) -> None:
    """Add this area's commands to the top-level app."""
    app.command("tune")(tune_cmd)
    app.add_typer(jobs_app, name="jobs")
    app.command("export")(export_cmd)
