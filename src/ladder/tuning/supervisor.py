"""The tuning supervisor: keeps one worker process alive while jobs wait, and reaps the ones it started.

`ladder serve` runs one in a thread for the app's lifetime; `ladder worker` runs one in the
foreground. Each pass (`tick`) reaps dead children, puts jobs of dead workers back in the queue,
and starts a worker when a job is queued and no live worker holds the slot. A child that keeps
dying before it trains a single step is restarted after a growing pause, so a broken install does
not spin; jobs that die repeatedly are failed by the lease rules (`leases.MAX_ATTEMPTS`).
"""

from __future__ import annotations

import logging
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field

from ladder.store.db import get_db
from ladder.tuning import jobs, leases, worker, worker_ctl

log = logging.getLogger("ladder.tuning.supervisor")


@dataclass(frozen=True)
class Backoff:
    """Pause before the next start after `failures` children in a row died without training a step."""

    first_s: float = 0.5
    max_s: float = 30.0

    def delay(self, failures: int) -> float:
        return 0.0 if failures <= 0 else min(self.max_s, self.first_s * 2 ** (failures - 1))


@dataclass
class _Child:
    proc: subprocess.Popen
    events_mark: int  # the last job event before it started: any metrics after it are its progress
    started_at: float = field(default_factory=time.monotonic)


class Supervisor:
    """Start with `start()` (a thread) or `run()` (this thread); `stop()` ends it and its workers."""

    def __init__(
        self,
        *,
        interval_s: float = 1.0,
        backoff: Backoff = Backoff(),
        command: list[str] | None = None,
        stop_grace_s: float = 10.0,
    ):
        self.interval_s, self.backoff, self.stop_grace_s = interval_s, backoff, stop_grace_s
        self.command = command  # None: `python -m ladder.tuning.worker`
        self.children: list[_Child] = []
        self.spawned = 0  # workers started by this supervisor, for logs and tests
        self.failures = 0  # children in a row that died without training a step
        self._next_start = 0.0
        self._started_up = False
        self._halt, self._wake = threading.Event(), threading.Event()
        self._thread: threading.Thread | None = None

    # -- one pass ---------------------------------------------------------------------------

    def tick(self) -> None:
        """Reap, reclaim, and start a worker if a job waits for one."""
        db = get_db()
        self._reap(db)
        leases.reclaim_stale(db)
        from ladder.tuning.service import fail_stale_validations

        fail_stale_validations()  # a job a dead process left in validating_files ends failed
        if not self._started_up:
            # A restart after a crash: no worker of ours runs, so half-written checkpoints of
            # jobs that are not running are garbage; queued jobs are picked up just below.
            worker.sweep_partials(db)
            self._started_up = True
        if time.monotonic() < self._next_start or not self.work_waiting():
            return
        mark = jobs.last_event_seq(db)
        proc = worker_ctl.spawn_worker(self.command, db)
        if proc is not None:
            self.children.append(_Child(proc, mark))
            self.spawned += 1
            log.info("started tuning worker %d", proc.pid)

    def work_waiting(self) -> bool:
        return jobs.any_with_status(("queued",))

    def busy(self) -> bool:
        """A child is alive, or a job is queued or running."""
        if any(c.proc.poll() is None for c in self.children):
            return True
        return jobs.any_with_status(("queued", "running"))

    def _reap(self, db) -> None:
        for child in list(self.children):
            code = child.proc.poll()  # waitpid: a dead child leaves no zombie behind
            if code is None:
                continue
            self.children.remove(child)
            trained = jobs.trained_since(child.events_mark, db)
            if code == 0 or trained:
                self.failures = 0
            else:
                self.failures += 1
                pause = self.backoff.delay(self.failures)
                self._next_start = time.monotonic() + pause
                log.warning(
                    "tuning worker %d exited with %s before training a step (%d in a row); next start in %.1f s",
                    child.proc.pid,
                    code,
                    self.failures,
                    pause,
                )

    # -- running ----------------------------------------------------------------------------

    def wake(self) -> None:
        """Look now rather than at the next interval (a job was just queued)."""
        self._wake.set()

    def run(self, idle_exit_s: float | None = None) -> None:
        """Supervise until `stop()` (or, with `idle_exit_s`, until nothing was left to do for that long)."""
        idle_since = time.monotonic()
        while not self._halt.is_set():
            try:
                self.tick()
                if idle_exit_s is not None:
                    if self.busy():
                        idle_since = time.monotonic()
                    elif time.monotonic() - idle_since >= idle_exit_s:
                        return
            except Exception:  # a locked or busy db must not end supervision; the next pass retries
                log.exception("tuning supervisor pass failed")
            self._wake.wait(self.interval_s)
            self._wake.clear()

    def start(self) -> Supervisor:
        self._thread = threading.Thread(target=self.run, name="ladder-tuning-supervisor", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """End supervision; workers it started are asked to stop (their jobs go back to the queue)."""
        self._halt.set()
        self._wake.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=30)
        for child in self.children:
            if child.proc.poll() is None:
                child.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.stop_grace_s
        for child in self.children:
            try:
                child.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.proc.kill()
                child.proc.wait()
        self.children.clear()
