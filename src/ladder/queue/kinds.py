"""Task kinds and their handlers: what a worker runs for an `eval`, a `climb`, a climb's `rung` or an `ingest`."""

from __future__ import annotations

from collections.abc import Callable

from ladder.queue import climbs, evals, ingests, rungs
from ladder.queue.context import Outcome, TaskContext
from ladder.queue.store import Task

Handler = Callable[[Task, TaskContext], Outcome]

# `tune` is not here: fine-tuning jobs have their own table and worker (ladder.tuning).
HANDLERS: dict[str, Handler] = {"eval": evals.run, "climb": climbs.run, rungs.KIND: rungs.run, "ingest": ingests.run}
