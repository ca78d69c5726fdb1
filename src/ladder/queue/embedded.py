"""The queue worker a server runs for evals, climbs and large KB ingests (off with LADDER_SERVE_WORKER=0)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from ladder.queue.config import QueueConfig

# One slot: the server also answers chat requests on the same cores; more slots are `ladder worker`'s.
# A climb runs its rungs in its own slot while it waits for them (ladder.queue.rungs): one slot is enough.
KINDS = ("eval", "climb", "rung", "ingest")


@asynccontextmanager
async def embedded_worker(app) -> AsyncIterator[None]:
    """Start the worker thread with the app, and stop it on shutdown (a running task stops at its next
    item and goes back to the queue, so the next server or `ladder worker` runs it)."""
    from ladder.queue.worker import QueueWorker

    worker = QueueWorker(KINDS).start() if QueueConfig().serve_worker else None
    app.state.queue_worker = worker  # routes wake it when they queue a task
    try:
        yield
    finally:
        app.state.queue_worker = None
        if worker is not None:
            await asyncio.to_thread(worker.stop, 10.0)
