"""Climb tasks: the checks made when one is queued, and the climb a worker runs for it: its rungs as tasks.

The climb queues its ready steps (ladder.climb.plan) as `rung` tasks (ladder.queue.rungs, where the
way it waits for them is explained), asks again as they finish, and when the plan is complete
assembles the climb (rung table, recommendation, report) from its rungs' stored results, and stores
it in its final transaction. Its rungs' eval runs were stored by the rungs, once each.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field

from ladder.queue import store
from ladder.queue.context import Outcome, TaskContext
from ladder.queue.store import Task


@dataclass
class ClimbParams:
    """What a climb task runs, stored as JSON on the task; files by id, so any machine can read them."""

    train_file: str
    test_file: str
    model: str | None = None
    task: str | None = None
    target: str | None = None
    kbs: list[str] = field(default_factory=list)
    tune: bool = True
    retrieved: bool = True  # the retrieved few-shot rung (off where no embedder is wanted, e.g. tests)

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> ClimbParams:
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})


def prepare(params: ClimbParams, project_id: str) -> ClimbParams:
    """Everything checkable before the task is queued, so a bad request is a 4xx now, not a failed task."""
    from ladder.climb.runner import parse_target
    from ladder.climb.tasks import check_task
    from ladder.evals.testset import check_test_file

    check_test_file(params.train_file, project_id, "train_file")
    check_test_file(params.test_file, project_id, "test_file")
    parse_target(params.target)
    if params.task:
        check_task(params.task)
    return params


def progress_ui(ctx: TaskContext):
    """The climb's progress bars as the task's progress: the stage (rung) and its items done."""
    from ladder.climb.runner import UI

    class ProgressUI(UI):
        @contextlib.contextmanager
        def bar(self, description: str, total: int | None) -> Iterator[Callable]:
            state = {"stage": description, "done": 0, "total": total}
            ctx.report(state)

            def advance(n: int = 1, total: int | None = None, **fields) -> None:
                state["done"] += n
                if total is not None:
                    state["total"] = total
                ctx.report(state)

            yield advance

    return ProgressUI()


def run(task: Task, ctx: TaskContext) -> Outcome:
    """Climb through rung tasks; the climb is stored by the worker's final transaction."""
    from ladder.climb.plan import Ladder, plan
    from ladder.climb.runner import ClimbOptions, assemble, parse_target, save_climb
    from ladder.climb.steps import StepResult
    from ladder.climb.stored_runs import load_run
    from ladder.evals.testset import read_test_set
    from ladder.queue import rungs
    from ladder.queue.config import QueueConfig

    p = ClimbParams.from_dict(task.params)
    train = read_test_set(ctx.local_copy(p.train_file, "train", "train_file"))
    test = read_test_set(ctx.local_copy(p.test_file, "test", "test_file"))
    opts = ClimbOptions(
        task=p.task, kbs=list(p.kbs), target=parse_target(p.target), model=p.model, tune=p.tune, retrieved=p.retrieved
    )
    # The climb's id is its task's: stable when the task is run again, so its rungs are found again.
    lad = Ladder.build(train, test, opts, task.project_id, climb_id=task.id)
    results: dict[str, tuple[str, StepResult]] = {}  # step name -> (rung task id, its result), read once
    helper = rungs.Helper(ctx, QueueConfig().beat_s)
    try:
        while True:
            ctx.check()
            children = store.children(task.id)
            _fail_on(children, task)
            for c in children:
                if c.status == "succeeded" and c.params["name"] not in results:
                    res = StepResult.from_dict(c.result or {}, lambda run_id: load_run(run_id, test, task.project_id))
                    results[c.params["name"]] = (c.id, res)
            now = plan(lad, {name: res for name, (_, res) in results.items()})
            if now.complete:
                break
            known = {c.params["name"] for c in children}
            if any(s.name not in known for s in now.ready):
                rungs.enqueue(task, lad.ctx, [s for s in now.ready if s.name not in known], p.train_file, p.test_file)
                continue
            if not helper.run_one():
                helper.pause()
    finally:
        helper.close()
    ctx.report(rungs.progress(store.children(task.id)))
    wall = time.time() - (task.started_at or task.created_at)
    result = assemble(lad, now.rungs, {name: res for name, (_, res) in results.items()}, wall)
    return Outcome(result.id, lambda: save_climb(result, [], task.project_id))


def _fail_on(children: list[Task], parent: Task) -> None:
    """A rung that failed (or was cancelled on its own) fails the climb, naming it; the rest are stopped."""
    from ladder.errors import LadderError, Stopped

    bad = next((c for c in children if c.status in ("failed", "cancelled")), None)
    if bad is None:
        return
    if store.cancel_requested(parent.id):  # the climb itself was cancelled: its rungs were, with it
        raise Stopped(f"climb {parent.id} cancelled")
    store.cancel_children(parent.id)
    err = bad.error or {}
    why = err.get("message") or ("was cancelled" if bad.status == "cancelled" else "failed")
    raise LadderError(
        f"rung {bad.params.get('name')!r} ({bad.id}) {bad.status}: {why}", code=err.get("code") or f"rung_{bad.status}"
    )
