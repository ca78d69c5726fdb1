"""Eval tasks: the checks made when one is queued, and the run a worker makes of it."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from ladder.queue.context import Outcome, TaskContext
from ladder.queue.store import Task


@dataclass
class EvalParams:
    """What an eval task runs, stored as JSON on the task; files by id, so any machine can read them."""

    bot: str  # as the caller named it (shown back on the task)
    bot_name: str
    bot_version: int  # pinned when queued: the eval measures the bot as it was asked for
    test_file: str
    metrics: list[str] | None = None
    input_col: str | None = None
    output_col: str | None = None
    limit: int | None = None

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> EvalParams:
        return cls(**{k: d.get(k) for k in cls.__dataclass_fields__})


def prepare(
    bot: str,
    test_file: str,
    project_id: str,
    *,
    metrics: list[str] | None = None,
    input_col: str | None = None,
    output_col: str | None = None,
    limit: int | None = None,
) -> EvalParams:
    """Everything checkable before the task is queued, so a bad request is a 4xx now, not a failed task."""
    from ladder.evals import scoring
    from ladder.evals.testset import check_test_file
    from ladder.pipelines import service

    pipe = service.get_bot(bot, project_id=project_id)  # 404 now, not later
    if metrics:
        scoring.check_metrics(metrics)
    # A bad test file is a 400 now that names the user's file, not a failed task naming a copy.
    check_test_file(test_file, project_id, "test_file", input_col=input_col, output_col=output_col)
    return EvalParams(bot, pipe.name, pipe.version, test_file, metrics, input_col, output_col, limit)


def run(task: Task, ctx: TaskContext) -> Outcome:
    """Score the pinned bot on the test file; the run is stored by the worker's final transaction."""
    from ladder.evals.runner import run_eval
    from ladder.evals.store import save_run
    from ladder.evals.testset import read_test_set
    from ladder.pipelines import service

    p = EvalParams.from_dict(task.params)
    pipe = service.get_bot(p.bot_name, p.bot_version, project_id=task.project_id)
    path = ctx.local_copy(p.test_file, "test", "test_file")
    items = read_test_set(path, input_col=p.input_col, output_col=p.output_col, limit=p.limit)
    done = [0]
    ctx.report({"done": 0, "total": len(items)})

    def advance(n: int) -> None:
        done[0] += n
        ctx.report({"done": done[0], "total": len(items)})

    run_ = run_eval(
        pipe,
        items,
        metrics=p.metrics,
        test_set=p.test_file,
        project_id=task.project_id,
        store=False,
        on_progress=advance,
        should_stop=ctx.should_stop,
    )
    return Outcome(run_.id, lambda: save_run(run_, project_id=task.project_id))
