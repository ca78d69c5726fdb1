"""Native /api/evals: start an eval of a chatbot on an uploaded test set, poll its status, read results."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

from fastapi import APIRouter, Depends
from fastapi.responses import HTMLResponse
from pydantic import Field

from ladder.errors import LadderError, NotFound
from ladder.ids import new_id
from ladder.server.deps import Principal, in_thread, principal
from ladder.server.schemas import FILE_ID, StrictBody, json_int
from ladder.store.scratch import Scratch

router = APIRouter(tags=["evals"])
log = logging.getLogger("ladder.server")
# Tasks live in this process (a restart forgets running ones; finished runs stay in the db).
_tasks: dict[str, dict] = {}
_lock = threading.Lock()


class EvalStart(StrictBody):
    bot: str = Field(..., min_length=1, max_length=128, description="chatbot name (name@version allowed)")
    test_file: str = Field(..., pattern=FILE_ID, description="a file id from POST /v1/files")
    metrics: list[str] | None = None
    input_col: str | None = Field(None, max_length=128)
    output_col: str | None = Field(None, max_length=128)
    limit: json_int(ge=1, le=100_000) | None = Field(None)


def _run(task_id: str, body: EvalStart, project_id: str, path: str) -> None:
    from ladder.evals.runner import run_eval
    from ladder.evals.testset import read_test_set
    from ladder.pipelines import service

    def work() -> str:
        pipe = service.get_bot(body.bot, project_id=project_id)
        items = read_test_set(path, input_col=body.input_col, output_col=body.output_col, limit=body.limit)
        return run_eval(pipe, items, metrics=body.metrics, test_set=body.test_file, project_id=project_id).id

    _finish(task_id, "eval", work)


def _launch(kind: str, project_id: str, target, args: tuple, scratch: Scratch, **extra) -> dict:
    """Record a running task (`eval-…` or `climb-…`) and start its work in a background thread.

    The thread owns `scratch` (the run's input copies) from here on and removes it when the work ends,
    however it ends; a crash leaves it to the start-up sweep.
    """
    task_id = new_id(kind)
    task = {
        "id": task_id,
        "object": f"{kind}.task",
        "status": "running",
        **extra,
        "run_id": None,
        "error": None,
        "created_at": int(time.time()),
        "finished_at": None,
        "project_id": project_id,
    }

    def run() -> None:
        try:
            target(task_id, *args)
        finally:
            scratch.close()

    with _lock:
        _tasks[task_id] = task
    threading.Thread(target=run, daemon=True).start()
    return _public(task)


def _finish(task_id: str, kind: str, work) -> None:
    """Run a task's work and record its outcome on the task; never raises into the server."""
    try:
        update = {"status": "succeeded", "run_id": work()}
    except LadderError as e:
        update = {"status": "failed", "error": {"message": e.message, "code": e.code}}
    except Exception as e:  # reported on the task and logged; the server keeps serving
        log.exception("%s task failed", kind)
        update = {"status": "failed", "error": {"message": f"internal error ({type(e).__name__})", "code": None}}
    with _lock:
        _tasks[task_id].update(update, finished_at=int(time.time()))


def _start(body: EvalStart, project_id: str) -> dict:
    from ladder.evals.testset import check_test_file
    from ladder.pipelines import service

    service.get_bot(body.bot, project_id=project_id)  # 404 now, not later
    # A bad test file is a 400 now that names the user's file, not a failed task naming a copy.
    check_test_file(body.test_file, project_id, "test_file", input_col=body.input_col, output_col=body.output_col)
    scratch = Scratch("eval")
    try:
        test = _local_copy(body.test_file, project_id, "test", scratch.path)
        return _launch("eval", project_id, _run, (body, project_id, test), scratch, bot=body.bot)
    except BaseException:
        scratch.close()
        raise


def _public(task: dict) -> dict:
    return {k: v for k, v in task.items() if k != "project_id"}


def _task(task_id: str, project_id: str) -> dict:
    with _lock:
        task = _tasks.get(task_id)
    if task is None or task["project_id"] != project_id:
        raise NotFound(f"no task {task_id[:100]!r}", param="id")
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


class ClimbStart(StrictBody):
    train_file: str = Field(..., pattern=FILE_ID, description="file id of the training examples")
    test_file: str = Field(..., pattern=FILE_ID, description="file id of the held-out test set")
    model: str | None = Field(None, max_length=512)
    task: str | None = Field(None, max_length=64)
    target: str | None = Field(None, max_length=64, description="METRIC=VALUE, e.g. accuracy=0.8")
    kbs: list[str] = Field(default_factory=list, max_length=16)
    tune: bool = True


def _local_copy(file_id: str, project_id: str, stem: str, scratch: Path) -> str:
    """Copy an uploaded file into the run's scratch directory, keeping its extension (readers go by it)."""
    from ladder.store import files

    rec = files.resolve_file(file_id, project_id, f"{stem}_file")  # an id, never a path
    path = scratch / f"{stem}{Path(rec.filename).suffix or '.jsonl'}"
    path.write_bytes(rec.read_bytes())
    return str(path)


def _run_climb(task_id: str, body: ClimbStart, project_id: str, train_path: str, test_path: str) -> None:
    from ladder.climb.runner import ClimbOptions, climb, parse_target
    from ladder.evals.testset import read_test_set

    def work() -> str:
        opts = ClimbOptions(
            task=body.task, kbs=list(body.kbs), target=parse_target(body.target), model=body.model, tune=body.tune
        )
        return climb(read_test_set(train_path), read_test_set(test_path), opts, project_id=project_id).id

    _finish(task_id, "climb", work)


def _start_climb(body: ClimbStart, project_id: str) -> dict:
    from ladder.evals.testset import check_test_file

    check_test_file(body.train_file, project_id, "train_file")  # a 400 now, not a failed task
    check_test_file(body.test_file, project_id, "test_file")
    scratch = Scratch("climb")
    try:
        train = _local_copy(body.train_file, project_id, "train", scratch.path)
        test = _local_copy(body.test_file, project_id, "test", scratch.path)
        return _launch("climb", project_id, _run_climb, (body, project_id, train, test), scratch)
    except BaseException:
        scratch.close()
        raise


def _climb_summary(run_id: str, project_id: str) -> dict:
    import json

    from ladder.store.db import get_db

    row = get_db().one("SELECT * FROM climbs WHERE id=? AND project_id=?", (run_id, project_id))
    if row is None:
        raise NotFound(f"no climb {run_id!r}", param="climb_id")
    return {"summary": json.loads(row["summary"]), "report_dir": row["report_dir"]}


@router.post("/api/climbs", tags=["climbs"])
async def start_climb(body: ClimbStart, who: Principal = Depends(principal)) -> dict:
    """Climb the ladder on uploaded train/test files; poll GET /api/climbs/{id}."""
    return await in_thread(_start_climb, body, who.project_id)


@router.get("/api/climbs/{climb_id}", tags=["climbs"])
async def get_climb(climb_id: str, who: Principal = Depends(principal)) -> dict:
    task = _task(climb_id, who.project_id)
    out = _public(task)
    if task["run_id"]:
        out["results"] = await in_thread(_climb_summary, task["run_id"], who.project_id)
    return out


@router.get("/api/climbs/{climb_id}/report", tags=["climbs"], response_class=HTMLResponse)
async def climb_report(climb_id: str, who: Principal = Depends(principal)) -> HTMLResponse:
    """The climb's HTML report (plots inline or beside it under the report directory)."""
    task = _task(climb_id, who.project_id)
    if not task["run_id"]:
        raise NotFound(f"climb {climb_id} has no report yet (status {task['status']})", param="climb_id")
    info = await in_thread(_climb_summary, task["run_id"], who.project_id)
    html = Path(info["report_dir"] or "") / "report.html"
    if not html.is_file():
        raise NotFound(f"climb {climb_id} has no HTML report", param="climb_id")
    return HTMLResponse(await in_thread(html.read_text, encoding="utf-8"))
