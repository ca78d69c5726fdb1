"""What a running task sees: its scratch directory, whether to stop, and where to report progress."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ladder.errors import Stopped
from ladder.queue import store
from ladder.queue.store import Task

# A cancel is seen at the next item without waiting for the heartbeat, but the database is asked at
# most this often (cached answers report progress item by item, hundreds a second).
CANCEL_POLL_S = 0.2


@dataclass
class Outcome:
    """A finished task's result: the run it made, and how to store it (called inside the final transaction)."""

    run_id: str
    save: Callable[[], None]
    # Called once the result has committed (never when it did not): removing what it replaced, such as
    # the blobs of a replaced document, which must not go before the commit.
    after: Callable[[], None] | None = None


class TaskContext:
    """Handed to a kind's handler by the worker that claimed the task."""

    def __init__(self, task: Task, scratch: Path, halted: Callable[[], bool]):
        self.task = task
        self.scratch = scratch
        self._halted = halted  # the worker is stopping, or lost the task's lease
        self._lock = threading.Lock()
        self._progress: dict | None = None
        self._changed = False
        self._next_poll = 0.0
        self._cancelled = False

    # -- stopping ---------------------------------------------------------------------------

    def mark_cancelled(self) -> None:
        self._cancelled = True

    def should_stop(self) -> bool:
        """True once the task was cancelled or its worker must let it go; handlers stop at the next item."""
        if self._cancelled or self._halted():
            return True
        now = time.monotonic()
        if now >= self._next_poll:
            self._next_poll = now + CANCEL_POLL_S
            # A busy db does not fail the task: the heartbeat sees the cancel too.
            with contextlib.suppress(Exception):
                self._cancelled = store.cancel_requested(self.task.id)
        return self._cancelled

    def check(self) -> None:
        if self.should_stop():
            raise Stopped(f"{self.task.kind} {self.task.id} stopped")

    # -- progress ---------------------------------------------------------------------------

    def report(self, progress: dict) -> None:
        """The task's progress now, e.g. {"done": 3, "total": 40}; the heartbeat writes it to the row."""
        with self._lock:
            self._progress = dict(progress)
            self._changed = True

    def take_progress(self) -> dict | None:
        """The progress reported since the last call (None when unchanged)."""
        with self._lock:
            if not self._changed:
                return None
            self._changed = False
            return self._progress

    @property
    def progress(self) -> dict | None:
        with self._lock:
            return self._progress

    # -- inputs -----------------------------------------------------------------------------

    def local_copy(self, file_id: str, stem: str, param: str) -> Path:
        """The uploaded file, copied into this run's scratch directory (its extension kept: readers go by it)."""
        from ladder.store import files

        rec = files.resolve_file(file_id, self.task.project_id, param)  # an id, never a path
        path = self.scratch / f"{stem}{Path(rec.filename).suffix or '.jsonl'}"
        path.write_bytes(rec.read_bytes())
        return path
