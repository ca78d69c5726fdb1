"""Native /api/evals and /api/climbs: queue an eval or a climb, poll its task, cancel it, read results.

The server only checks and enqueues (ladder.queue): a worker — the server's embedded one, or any
`ladder worker` sharing the database — runs the task, so a restart or a second server loses nothing.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from pydantic import Field

from ladder.climb.store import climb_summary
from ladder.errors import NotFound
from ladder.queue import climbs, evals, store
from ladder.queue.store import Task
from ladder.server.deps import Principal, in_thread, principal
from ladder.server.schemas import FILE_ID, StrictBody, json_int

router = APIRouter(tags=["evals"])


class EvalStart(StrictBody):
    bot: str = Field(..., min_length=1, max_length=128, description="chatbot name (name@version allowed)")
    test_file: str = Field(..., pattern=FILE_ID, description="a file id from POST /v1/files")
    metrics: list[str] | None = None
    input_col: str | None = Field(None, max_length=128)
    output_col: str | None = Field(None, max_length=128)
    limit: json_int(ge=1, le=100_000) | None = Field(None)


class ClimbStart(StrictBody):
    train_file: str = Field(..., pattern=FILE_ID, description="file id of the training examples")
    test_file: str = Field(..., pattern=FILE_ID, description="file id of the held-out test set")
    model: str | None = Field(None, max_length=512)
    task: str | None = Field(None, max_length=64)
    target: str | None = Field(None, max_length=64, description="METRIC=VALUE, e.g. accuracy=0.8")
    kbs: list[str] = Field(default_factory=list, max_length=16)
    tune: bool = True


def public(task: Task) -> dict:
    """A task as the API shows it (the fields of the in-process tasks before the queue, and its progress)."""
    out = {"id": task.id, "object": f"{task.kind}.task", "status": task.status}
    if task.kind == "eval":
        out["bot"] = task.params.get("bot")
    out.update(
        run_id=task.run_id,
        error=task.error,
        progress=task.progress,
        attempts=task.attempts,
        cancel_requested=task.cancel_requested,
        created_at=int(task.created_at),
        started_at=int(task.started_at) if task.started_at else None,
        finished_at=int(task.finished_at) if task.finished_at else None,
    )
    return out


def _wake(request: Request) -> None:
    """A task was queued: the server's embedded worker looks now instead of at its next poll."""
    worker = getattr(request.app.state, "queue_worker", None)
    if worker is not None:
        worker.wake()


def _start_eval(body: EvalStart, project_id: str) -> dict:
    params = evals.prepare(
        body.bot,
        body.test_file,
        project_id,
        metrics=body.metrics,
        input_col=body.input_col,
        output_col=body.output_col,
        limit=body.limit,
    )
    return public(store.enqueue("eval", project_id, params.as_dict()))


def _with_results(task: Task, project_id: str) -> dict:
    from ladder.evals.store import get_run

    out = public(task)
    if task.run_id:
        out["results"] = get_run(task.run_id, project_id=project_id)
    return out


def _list_evals(project_id: str) -> dict:
    from ladder.evals.store import list_runs

    tasks = [public(t) for t in store.list_tasks(project_id, "eval")]
    return {"object": "list", "tasks": tasks, "data": list_runs(project_id=project_id)}


@router.post("/api/evals")
async def start_eval(body: EvalStart, request: Request, who: Principal = Depends(principal)) -> dict:
    """Queues at once (status `queued`); poll GET /api/evals/{id} until it is succeeded, failed or cancelled."""
    out = await in_thread(_start_eval, body, who.project_id)
    _wake(request)
    return out


@router.get("/api/evals")
async def list_evals(who: Principal = Depends(principal)) -> dict:
    """The project's eval tasks (newest first) and its stored eval runs."""
    return await in_thread(_list_evals, who.project_id)


@router.get("/api/evals/{eval_id}")
async def get_eval(eval_id: str, who: Principal = Depends(principal)) -> dict:
    """The task's status and progress, and when it succeeded the run's summary and per-item results."""
    task = await in_thread(store.get, eval_id, who.project_id, "eval")
    return await in_thread(_with_results, task, who.project_id)


@router.post("/api/evals/{eval_id}/cancel")
async def cancel_eval(eval_id: str, who: Principal = Depends(principal)) -> dict:
    """A queued eval is cancelled at once; a running one stops at its next item (409 once it has ended)."""
    return public(await in_thread(store.request_cancel, eval_id, who.project_id, "eval"))


def _start_climb(body: ClimbStart, project_id: str) -> dict:
    params = climbs.prepare(climbs.ClimbParams(**body.model_dump()), project_id)
    return public(store.enqueue("climb", project_id, params.as_dict()))


def _rung(child: Task) -> dict:
    """One of a climb's rung tasks (ladder.queue.rungs), as its climb's GET shows it, read live."""
    return {
        "id": child.id,
        "object": "rung.task",
        "name": child.params.get("name"),
        "status": child.status,
        "progress": child.progress,
        "run_id": child.run_id,
        "error": child.error,
        "attempts": child.attempts,
    }


@router.post("/api/climbs", tags=["climbs"])
async def start_climb(body: ClimbStart, request: Request, who: Principal = Depends(principal)) -> dict:
    """Climb the ladder on uploaded train/test files (queued at once); poll GET /api/climbs/{id}."""
    out = await in_thread(_start_climb, body, who.project_id)
    _wake(request)
    return out


@router.get("/api/climbs/{climb_id}", tags=["climbs"])
async def get_climb(climb_id: str, who: Principal = Depends(principal)) -> dict:
    task = await in_thread(store.get, climb_id, who.project_id, "climb")
    out = public(task)
    out["rungs"] = [_rung(c) for c in await in_thread(store.children, task.id)]
    if task.run_id:
        out["results"] = await in_thread(climb_summary, task.run_id, who.project_id)
    return out


@router.post("/api/climbs/{climb_id}/cancel", tags=["climbs"])
async def cancel_climb(climb_id: str, who: Principal = Depends(principal)) -> dict:
    """A queued climb is cancelled at once; a running one stops at its next item or rung (409 once ended)."""
    return public(await in_thread(store.request_cancel, climb_id, who.project_id, "climb"))


@router.get("/api/climbs/{climb_id}/report", tags=["climbs"], response_class=HTMLResponse)
async def climb_report(climb_id: str, who: Principal = Depends(principal)) -> HTMLResponse:
    """The climb's HTML report (plots inline or beside it under the report directory)."""
    task = await in_thread(store.get, climb_id, who.project_id, "climb")
    if not task.run_id:
        raise NotFound(f"climb {climb_id} has no report yet (status {task.status})", param="climb_id")
    info = await in_thread(climb_summary, task.run_id, who.project_id)
    from ladder.climb.report import report_html

    html = await in_thread(report_html, info["report_dir"])
    if html is None:
        raise NotFound(f"climb {climb_id} has no HTML report", param="climb_id")
    return HTMLResponse(html)
