"""Rung tasks: one step of a queued climb (a rung's eval, the fine-tune, the regression check) as a task of its own.

A `climb` task (ladder.queue.climbs) queues its ready steps as `rung` tasks on the same `tasks` table,
with `parent_id` naming it, so any worker on any machine may run them. A rung's params carry all it
needs by value or by id: the step (its pipeline config), the climb's shared settings, and the train
and test files as file ids. It stores its eval runs and its result (`tasks.result`, what the climb
assembles from) in the worker's final transaction, once, under the lease like any task.

How the climb waits. The climb task keeps its worker slot, its lease renewed by the heartbeat, and
asks again at every beat which steps are ready (a dozen reads; nothing busy-spins). While it would only
wait, it runs the oldest queued rung in its own slot (`Helper`): so a one-slot worker (the server's
embedded one) never deadlocks on a climb waiting for a rung no slot is free to run, and a climb is
never slower than the in-process one, while rungs queued meanwhile are taken by any other worker.
The alternative, a parked `waiting` status resumed by the last child, needs a transition in every
path that ends a task (success, failure, cancel, reclaim after a dead worker); one missed and a climb
waits forever. Here a climb killed with its worker is reclaimed by the lease rules and, run again,
finds its rungs by name: none is queued twice, none rerun that finished.

A fine-tune rung notes the job it started (`tasks.result` = {"job_id"}) at once: run again after its
worker died, it follows that job (durable itself) rather than training a second model.
"""

from __future__ import annotations

import contextlib
import threading
import time
from dataclasses import asdict, dataclass

from ladder.queue import store
from ladder.queue.context import CANCEL_POLL_S, Outcome, TaskContext
from ladder.queue.store import Task

KIND = "rung"


@dataclass
class RungParams:
    """A rung task's params (JSON on the task)."""

    name: str  # the step's name, unique within its climb: how a climb run again finds its rungs
    step: dict  # ladder.climb.plan.Step.as_dict()
    climb: dict  # ladder.climb.plan.RungContext.as_dict()
    train_file: str
    test_file: str

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> RungParams:
        return cls(**{k: d[k] for k in cls.__dataclass_fields__})


def enqueue(parent: Task, rung_ctx, steps: list, train_file: str, test_file: str) -> list[Task]:
    """Queue the steps this climb has not queued yet (nothing, LeaseLost, if the climb is no longer ours)."""
    params = [RungParams(s.name, s.as_dict(), rung_ctx.as_dict(), train_file, test_file).as_dict() for s in steps]
    return store.enqueue_children(parent, parent.worker_id, KIND, params, key="name")


def run(task: Task, ctx: TaskContext) -> Outcome:
    """Run one step; its eval runs and its result are stored by the worker's final transaction."""
    from ladder.climb.plan import RungContext, Step
    from ladder.climb.steps import run_step
    from ladder.evals.store import save_run
    from ladder.evals.testset import read_test_set
    from ladder.queue.climbs import progress_ui

    p = RungParams.from_dict(task.params)
    step, rung_ctx = Step.from_dict(p.step), RungContext.from_dict(p.climb)
    test = read_test_set(ctx.local_copy(p.test_file, "test", "test_file"))
    train = read_test_set(ctx.local_copy(p.train_file, "train", "train_file")) if step.kind == "fine-tune" else []

    def started(job_id: str) -> None:
        store.set_result(task.id, {"job_id": job_id}, worker_id=task.worker_id)

    res = run_step(
        step,
        rung_ctx,
        train,
        test,
        ui=progress_ui(ctx),
        should_stop=ctx.should_stop,
        job_id=(task.result or {}).get("job_id"),  # a fine-tune this rung started before its worker died
        on_job=started,
    )

    def save() -> None:
        for run_ in res.runs:
            save_run(run_, project_id=task.project_id)
        store.set_result(task.id, res.as_dict())

    main = res.rung.run if res.rung is not None and res.rung.run is not None else None
    return Outcome(main.id if main else (res.runs[0].id if res.runs else None), save)


def progress(children: list[Task]) -> dict:
    """A climb's progress from its rung tasks: each with its status and done/total, and a one-line stage."""
    rungs = []
    for c in children:
        p = c.progress or {}
        rungs.append(
            {
                "name": c.params.get("name"),
                "task": c.id,
                "status": c.status,
                "done": p.get("done"),
                "total": p.get("total"),
            }
        )
    active = [r["name"] for r in rungs if r["status"] in ("queued", "running")]
    ended = sum(r["status"] in store.DONE for r in rungs)
    stage = f"rungs running: {', '.join(active)}" if active else "rungs done"
    return {"stage": stage, "done": ended, "total": len(rungs), "rungs": rungs}


class Helper:
    """While a climb waits, runs queued rungs in its slot, and keeps the climb's progress current.

    The rung runs under a worker of its own (its own worker id and lease, like any slot's); it stops
    when the climb must: cancelled (the rung is cancelled with it) or its worker shutting down (the
    rung goes back to the queue).
    """

    def __init__(self, ctx: TaskContext, beat_s: float):
        from ladder.queue.worker import QueueWorker

        self.ctx, self.beat_s = ctx, beat_s
        self.worker = QueueWorker((KIND,), interval_s=beat_s)
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._watch, name=f"ladder-climb-{ctx.task.id}", daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        next_report = 0.0
        while not self._closed.wait(CANCEL_POLL_S):
            if self.ctx.should_stop():
                self.worker.stop(0)
                return
            if time.monotonic() >= next_report:
                next_report = time.monotonic() + self.beat_s
                with contextlib.suppress(Exception):  # a busy db: the next beat reports
                    self.ctx.report(progress(store.children(self.ctx.task.id)))

    def run_one(self) -> bool:
        """Run the oldest queued rung here (any climb's: the queue stays first come, first served)."""
        # A rung whose worker died goes back to the queue first: when every slot waits in a climb, no
        # slot loop is free to reclaim it, and the climb would wait for it forever.
        store.reclaim_stale()
        return self.worker.run_one() is not None

    def pause(self) -> None:
        """Wait a beat (stopping early when the climb must stop)."""
        deadline = time.monotonic() + self.beat_s
        while time.monotonic() < deadline:
            self.ctx.check()
            time.sleep(min(CANCEL_POLL_S, self.beat_s))

    def close(self) -> None:
        self._closed.set()
        self._thread.join(timeout=5)
