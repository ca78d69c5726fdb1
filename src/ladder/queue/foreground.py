"""`ladder worker`'s loop: the tuning supervisor (kind `tune`) and a queue worker (eval, climb, ingest) together."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence

from ladder.queue import store
from ladder.queue.worker import QueueWorker

log = logging.getLogger("ladder.queue")
KINDS = ("tune", "eval", "climb", "rung", "ingest")


def parse_kinds(text: str) -> tuple[str, ...]:
    """`tune,eval` → ("tune", "eval"); an unknown kind is a clear error."""
    from ladder.errors import InvalidInput

    kinds = tuple(dict.fromkeys(k.strip() for k in text.split(",") if k.strip()))
    bad = [k for k in kinds if k not in KINDS]
    if bad or not kinds:
        raise InvalidInput(f"--kinds takes a comma-separated list of {', '.join(KINDS)}, not {text!r}", param="kinds")
    return kinds


class Foreground:
    """Run until `stop()` or, with `idle_exit_s`, until nothing of its kinds was queued or running for that long."""

    def __init__(self, kinds: Sequence[str] = KINDS, *, concurrency: int = 1, interval_s: float = 1.0):
        from ladder.tuning.supervisor import Supervisor

        self.task_kinds = tuple(k for k in kinds if k != "tune")
        self.supervisor = Supervisor(interval_s=interval_s) if "tune" in kinds else None
        self.queue = (
            QueueWorker(self.task_kinds, concurrency=concurrency, interval_s=interval_s) if self.task_kinds else None
        )
        self.interval_s = interval_s
        self._halt = threading.Event()

    def busy(self) -> bool:
        if self.supervisor is not None and self.supervisor.busy():
            return True
        return self.queue is not None and (self.queue.busy() or store.pending(self.task_kinds))

    def run(self, idle_exit_s: float | None = None) -> None:
        if self.queue is not None:
            self.queue.start()
        idle_since = time.monotonic()
        while not self._halt.is_set():
            try:
                if self.supervisor is not None:
                    self.supervisor.tick()
                if idle_exit_s is not None:
                    if self.busy():
                        idle_since = time.monotonic()
                    elif time.monotonic() - idle_since >= idle_exit_s:
                        return
            except Exception:  # a locked or busy db must not end the worker; the next pass retries
                log.exception("worker pass failed")
            self._halt.wait(self.interval_s)

    def stop(self) -> None:
        """Stop both: a running eval or climb stops at its next item, a training job at its next step,
        and each goes back to the queue for the next worker."""
        self._halt.set()
        if self.queue is not None:
            self.queue.stop()
        if self.supervisor is not None:
            self.supervisor.stop()
