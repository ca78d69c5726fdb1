"""OpenAI-compatible /v1/fine_tuning/jobs: create, list, get, cancel, resume, events, checkpoints."""

from __future__ import annotations

from fastapi import APIRouter, Depends, FastAPI, Query, Request

from ladder.errors import InvalidInput
from ladder.server.deps import Principal, in_thread, principal
from ladder.server.schemas import FineTuningJobRequest
from ladder.tuning import service

router = APIRouter(tags=["fine-tuning"])


def _page(items: list, limit: int) -> dict:
    page = items[:limit]
    return {"object": "list", "data": [x.as_openai() for x in page], "has_more": len(items) > limit}


def _nudge(app: FastAPI) -> None:
    """A job was queued: wake the server's tuning supervisor (without one, start a worker directly)."""
    supervisor = getattr(app.state, "tuning_supervisor", None)
    if supervisor is not None:
        supervisor.wake()
    elif not getattr(app.state, "tuning_elsewhere", False):  # served without `ladder serve`'s lifespan
        service.ensure_worker()


def _create(body: FineTuningJobRequest, project_id: str, app: FastAPI) -> dict:
    hp = dict(body.hyperparameters or {})
    if body.method is not None:
        if body.method.type != "supervised":
            raise InvalidInput(
                f"method.type {body.method.type!r} is not supported; use supervised", param="method.type"
            )
        if body.method.supervised and body.method.supervised.hyperparameters:
            hp.update(body.method.supervised.hyperparameters)
    for ref, param in ((body.training_file, "training_file"), (body.validation_file, "validation_file")):
        if ref is not None and not ref.startswith("file-"):
            # Over HTTP only uploaded files may be named: a path would read the server's disk.
            raise InvalidInput(f"{param} must be a file id (file-…) from POST /v1/files", param=param)
    job = service.create_job(
        body.training_file,
        validation_file=body.validation_file,
        model=body.model,
        suffix=body.suffix,
        hyperparameters=hp or None,
        seed=body.seed,
        project_id=project_id,
    )
    _nudge(app)
    return job.as_openai()


@router.post("/v1/fine_tuning/jobs")
async def create_job(body: FineTuningJobRequest, request: Request, who: Principal = Depends(principal)) -> dict:
    """Validate the files and queue the job; the background worker trains it."""
    return await in_thread(_create, body, who.project_id, request.app)


@router.get("/v1/fine_tuning/jobs")
async def list_jobs(
    after: str | None = Query(None, max_length=256),
    limit: int = Query(20, ge=1, le=100),
    who: Principal = Depends(principal),
) -> dict:
    jobs = await in_thread(service.list_jobs, who.project_id, after, min(limit + 1, 100))
    return _page(jobs, limit)


@router.get("/v1/fine_tuning/jobs/{job_id}")
async def get_job(job_id: str, who: Principal = Depends(principal)) -> dict:
    return (await in_thread(service.get_job, job_id, who.project_id)).as_openai()


@router.post("/v1/fine_tuning/jobs/{job_id}/cancel")
async def cancel_job(job_id: str, who: Principal = Depends(principal)) -> dict:
    return (await in_thread(service.cancel_job, job_id, who.project_id)).as_openai()


def _resume(job_id: str, project_id: str, app: FastAPI) -> dict:
    job = service.resume_job(job_id, project_id)
    _nudge(app)
    return job.as_openai()


@router.post("/v1/fine_tuning/jobs/{job_id}/resume")
async def resume_job(job_id: str, request: Request, who: Principal = Depends(principal)) -> dict:
    """Ladder extension: queue a failed or cancelled job again; it continues from its last complete
    checkpoint (409 unless the job is failed or cancelled)."""
    return await in_thread(_resume, job_id, who.project_id, request.app)


@router.get("/v1/fine_tuning/jobs/{job_id}/events")
async def list_events(
    job_id: str,
    after: str | None = Query(None, max_length=256),
    limit: int = Query(20, ge=1, le=1000),
    who: Principal = Depends(principal),
) -> dict:
    events = await in_thread(service.list_events, job_id, who.project_id, after, limit + 1)
    return _page(events, limit)


@router.get("/v1/fine_tuning/jobs/{job_id}/checkpoints")
async def list_checkpoints(
    job_id: str,
    after: str | None = Query(None, max_length=256),
    limit: int = Query(10, ge=1, le=100),
    who: Principal = Depends(principal),
) -> dict:
    ckpts = await in_thread(service.list_checkpoints, job_id, who.project_id, after, limit + 1)
    out = _page(ckpts, limit)
    out["first_id"] = out["data"][0]["id"] if out["data"] else None
    out["last_id"] = out["data"][-1]["id"] if out["data"] else None
    return out
