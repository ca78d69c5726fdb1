"""Native /api/evals: start an eval of a chatbot on an uploaded test set, poll its status, read results."""

from __future__ import annotations

import logging
import threading
import time

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from ladder.errors import LadderError, NotFound
from ladder.ids import new_id
from ladder.server.deps import Principal, in_thread, principal

router = APIRouter(tags=["evals"])
log = logging.getLogger("ladder.server")
# Tasks live in this process (a restart forgets running ones; finished runs stay in the db).
_tasks: dict[str, dict] = {}
_lock = threading.Lock()


class EvalStart(BaseModel):
    bot: str = Field(..., min_length=1, max_length=128, description="chatbot name (name@version allowed)")
    test_file: str = Field(..., min_length=1, max_length=256, description="a file id from POST /v1/files")
    metrics: list[str] | None = None
    input_col: str | None = Field(None, max_length=128)
    output_col: str | None = Field(None, max_length=128)
    limit: int | None = Field(None, ge=1, le=100_000)


def _run(task_id: str, body: EvalStart, project_id: str, path: str) -> None:
    from ladder.evals.runner import run_eval
    from ladder.evals.testset import read_test_set
    from ladder.pipelines import service

    try:
        pipe = service.get_bot(body.bot, project_id=project_id)
        items = read_test_set(path, input_col=body.input_col, output_col=body.output_col, limit=body.limit)
        run = run_eval(pipe, items, metrics=body.metrics, test_set=body.test_file, project_id=project_id)
        update = {"status": "succeeded", "run_id": run.id}
    except LadderError as e:
        update = {"status": "failed", "error": {"message": e.message, "code": e.code}}
    except Exception as e:  # reported on the task and logged; the server keeps serving
        log.exception("eval task failed")
        update = {"status": "failed", "error": {"message": f"internal error ({type(e).__name__})", "code": None}}
    with _lock:
        _tasks[task_id].update(update, finished_at=int(time.time()))


def _start(body: EvalStart, project_id: str) -> dict:
    import tempfile
    from pathlib import Path

    from ladder.pipelines import service
    from ladder.store import files

    service.get_bot(body.bot, project_id=project_id)  # 404 now, not later
    rec = files.get(body.test_file, project_id)
    tmp = Path(tempfile.mkdtemp(prefix="ladder-eval-")) / f"test{Path(rec.filename).suffix or '.jsonl'}"
    tmp.write_bytes(rec.read_bytes())
    task_id = new_id("eval")
    task = {
        "id": task_id,
        "object": "eval.task",
        "status": "running",
        "bot": body.bot,
        "run_id": None,
        "error": None,
        "created_at": int(time.time()),
        "finished_at": None,
        "project_id": project_id,
    }
    with _lock:
        _tasks[task_id] = task
    threading.Thread(target=_run, args=(task_id, body, project_id, str(tmp)), daemon=True).start()
    return _public(task)


def _public(task: dict) -> dict:
    return {k: v for k, v in task.items() if k != "project_id"}


def _task(task_id: str, project_id: str) -> dict:
    with _lock:
        task = _tasks.get(task_id)
    if task is None or task["project_id"] != project_id:
        raise NotFound(f"no eval {task_id[:100]!r}", param="eval_id")
    return task


@router.post("/api/evals")
async def start_eval(body: EvalStart, who: Principal = Depends(principal)) -> dict:
    """Starts at once; poll GET /api/evals/{id} until status is succeeded or failed."""
    return await in_thread(_start, body, who.project_id)


@router.get("/api/evals")
async def list_evals(who: Principal = Depends(principal)) -> dict:
    from ladder.evals.store import list_runs

    with _lock:
        running = [_public(t) for t in _tasks.values() if t["project_id"] == who.project_id]
    return {"object": "list", "tasks": running, "data": await in_thread(list_runs, project_id=who.project_id)}


@router.get("/api/evals/{eval_id}")
async def get_eval(eval_id: str, who: Principal = Depends(principal)) -> dict:
    """The task's status, and when it succeeded the run's summary and per-item results."""
    from ladder.evals.store import get_run

    task = _task(eval_id, who.project_id)
    out = _public(task)
    if task["run_id"]:
        out["results"] = await in_thread(get_run, task["run_id"], project_id=who.project_id)
    return out
