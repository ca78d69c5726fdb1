"""Climb tasks: the checks made when one is queued, and the climb a worker runs for it."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field

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


def _ui(ctx: TaskContext):
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
    """Climb on the uploaded files; the climb and its eval runs are stored by the worker's final transaction."""
    from ladder.climb.runner import ClimbOptions, climb, parse_target, save_climb
    from ladder.evals.testset import read_test_set

    p = ClimbParams.from_dict(task.params)
    train = read_test_set(ctx.local_copy(p.train_file, "train", "train_file"))
    test = read_test_set(ctx.local_copy(p.test_file, "test", "test_file"))
    opts = ClimbOptions(task=p.task, kbs=list(p.kbs), target=parse_target(p.target), model=p.model, tune=p.tune)
    kept = []
    result = climb(
        train,
        test,
        opts,
        ui=_ui(ctx),
        project_id=task.project_id,
        should_stop=ctx.should_stop,
        save=lambda result, runs: kept.append(runs),
    )
    return Outcome(result.id, lambda: save_climb(result, kept[0], task.project_id))
