"""The queue worker: slot threads that claim tasks, run them under a renewed lease, and record how they ended.

`ladder serve` runs one with one slot (eval, climb) unless LADDER_SERVE_WORKER=0; `ladder worker`
runs one with `--concurrency` slots on any machine that reaches the database. Each slot has its own
worker id, so a lease names exactly one running task.
"""

from __future__ import annotations

import logging
import os
import secrets
import threading
from collections.abc import Sequence

from ladder.errors import LadderError, Stopped
from ladder.queue import kinds, store
from ladder.queue.config import QueueConfig
from ladder.queue.context import TaskContext
from ladder.queue.store import LeaseLost, Task
from ladder.settings import host_name
from ladder.store.scratch import Scratch

log = logging.getLogger("ladder.queue")


class Heartbeat:
    """Renews one task's lease every `beat_s` and writes its progress; notices a lost lease or a cancel."""

    def __init__(self, task: Task, worker_id: str, ctx: TaskContext, beat_s: float):
        self.task, self.worker_id, self.ctx, self.beat_s = task, worker_id, ctx, beat_s
        self.lost = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"ladder-lease-{task.id}", daemon=True)

    def start(self) -> Heartbeat:
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.beat_s):
            try:
                lease = store.renew(self.task.id, self.worker_id, self.ctx.take_progress())
            except Exception:  # a busy or unreachable db: the next beat tries again, the lease has slack
                log.exception("renewing the lease of %s failed", self.task.id)
                continue
            if not lease.ours:
                log.warning("%s is no longer ours (lease expired and reclaimed); stopping it", self.task.id)
                self.lost = True
                return
            if lease.cancel_requested:
                self.ctx.mark_cancelled()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=10)


FINISHED_KEPT = 1000


class QueueWorker:
    """Start with `start()`; `stop()` asks running tasks to stop at their next item and hands them back."""

    def __init__(
        self,
        kinds_: Sequence[str] = ("eval", "climb"),
        *,
        concurrency: int = 1,
        interval_s: float = 1.0,
        config: QueueConfig | None = None,
    ):
        unknown = [k for k in kinds_ if k not in kinds.HANDLERS]
        if unknown or not kinds_:
            raise ValueError(f"task kinds must be among {', '.join(kinds.HANDLERS)}, not {list(kinds_)}")
        self.kinds = tuple(kinds_)
        self.concurrency = max(1, concurrency)
        self.interval_s = interval_s
        self.config = config or QueueConfig()
        self.id = f"{host_name()}:{os.getpid()}:{secrets.token_hex(4)}"
        self.running: dict[int, str] = {}  # slot -> task id
        # task id -> how it ended here (succeeded, failed, released, ...), the latest FINISHED_KEPT only
        self.finished: dict[str, str] = {}
        self._finished_lock = threading.Lock()
        self._halt = threading.Event()
        self._wakes = [threading.Event() for _ in range(self.concurrency)]
        self._threads: list[threading.Thread] = []

    def _ended(self, task_id: str, how: str) -> None:
        with self._finished_lock:  # slot threads end tasks concurrently
            self.finished[task_id] = how
            while len(self.finished) > FINISHED_KEPT:  # a worker runs for months: keep the latest only
                self.finished.pop(next(iter(self.finished)))

    def slot_id(self, slot: int) -> str:
        return f"{self.id}/{slot}"

    # -- one task ---------------------------------------------------------------------------

    def run_one(self, slot: int = 0) -> Task | None:
        """Claim the oldest queued task of this worker's kinds and run it to its end; None if none waits."""
        task = store.claim_next(self.slot_id(slot), self.kinds)
        if task is None:
            return None
        self.running[slot] = task.id
        try:
            self._execute(task, self.slot_id(slot))
        finally:
            self.running.pop(slot, None)
        return task

    def _execute(self, task: Task, worker_id: str) -> None:
        log.info("%s: running %s (attempt %d)", worker_id, task.id, task.attempts)
        try:
            scratch = Scratch(task.kind)
        except OSError as e:  # this machine cannot run anything: say so on the task rather than retry it
            error = {"code": "scratch_unavailable", "message": f"the worker cannot make a scratch directory: {e}"}
            store.end(task.id, worker_id, "failed", error)
            self._ended(task.id, "failed")
            return
        beat: Heartbeat | None = None
        ctx = TaskContext(task, scratch.path, lambda: self._halt.is_set() or bool(beat and beat.lost))
        beat = Heartbeat(task, worker_id, ctx, self.config.beat_s).start()
        ended = "released"
        try:
            outcome = kinds.HANDLERS[task.kind](task, ctx)
            beat.stop()
            ended = store.complete(task.id, worker_id, outcome.run_id, outcome.save, progress=ctx.progress)
            if ended == "succeeded" and outcome.after is not None:
                try:
                    outcome.after()
                except Exception:  # the result is stored; a leftover is the start-up sweep's to remove
                    log.exception("%s: cleaning up after %s failed", worker_id, task.id)
        except Stopped:
            if beat.lost:
                ended = "lost"
            elif store.cancel_requested(task.id) or not self._halt.is_set():
                store.end(task.id, worker_id, "cancelled", progress=ctx.progress)
                ended = "cancelled"
            else:  # this worker is shutting down: the task goes back to the queue for another
                store.release(task.id, worker_id)
        except LeaseLost:
            log.warning("%s finished after its lease was lost; its result was not stored", task.id)
            ended = "lost"
        except LadderError as e:
            store.end(task.id, worker_id, "failed", {"code": e.code, "message": e.message}, progress=ctx.progress)
            ended = "failed"
        except Exception as e:  # reported on the task and logged; the worker keeps serving
            log.exception("%s task %s failed", task.kind, task.id)
            error = {"code": None, "message": f"internal error ({type(e).__name__})"}
            store.end(task.id, worker_id, "failed", error, progress=ctx.progress)
            ended = "failed"
        finally:
            beat.stop()
            scratch.close()
        self._ended(task.id, ended)
        log.info("%s: %s %s", worker_id, task.id, ended)

    # -- running ----------------------------------------------------------------------------

    def _loop(self, slot: int) -> None:
        while not self._halt.is_set():
            task = None
            try:
                store.reclaim_stale()
                task = self.run_one(slot)
            except Exception:  # a locked or unreachable db must not end the slot; the next pass retries
                log.exception("queue worker pass failed")
            if task is None:
                self._wakes[slot].wait(self.interval_s)
                self._wakes[slot].clear()

    def wake(self) -> None:
        """Look now rather than at the next interval (a task was just queued)."""
        for w in self._wakes:
            w.set()

    def busy(self) -> bool:
        return bool(self.running)

    def start(self) -> QueueWorker:
        for slot in range(self.concurrency):
            t = threading.Thread(target=self._loop, args=(slot,), name=f"ladder-queue-{slot}", daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """Stop claiming; running tasks stop at their next item and go back to the queue (not an attempt)."""
        self._halt.set()
        self.wake()
        for t in self._threads:
            if t is not threading.current_thread():
                t.join(timeout=timeout)
        self._threads.clear()
