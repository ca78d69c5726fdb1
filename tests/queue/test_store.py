"""The tasks table on the engine under test: claims never overlap, leases expire, attempts run out, cancels."""

from __future__ import annotations

import threading
import time

import pytest

from ladder.errors import Conflict, NotFound
from ladder.queue import store
from ladder.queue.store import MAX_ATTEMPTS, LeaseLost
from ladder.store.db import DEFAULT_PROJECT, get_db


def _queued(n: int, kind: str = "eval") -> list[str]:
    ids = []
    for i in range(n):
        ids.append(store.enqueue(kind, DEFAULT_PROJECT, {"n": i}).id)
        time.sleep(0.002)  # distinct created_at: the claim order is observable
    return ids


def test_claims_by_many_threads_take_each_task_once_oldest_first(ladder_home):
    ids = _queued(24)
    claimed: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(6)

    def claimer(n: int) -> None:
        start.wait()
        while (task := store.claim_next(f"w{n}", ("eval",))) is not None:
            with lock:
                claimed.append(task.id)

    threads = [threading.Thread(target=claimer, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(claimed) == sorted(ids)  # every task once, none twice
    rows = get_db().query("SELECT status, attempts, worker_id FROM tasks")
    assert {(r["status"], r["attempts"]) for r in rows} == {("running", 1)}
    # one claimer alone takes them oldest first
    more = _queued(3, "climb")
    assert [store.claim_next("solo", ("climb",)).id for _ in more] == more
    assert store.claim_next("solo", ("eval", "climb")) is None


def test_a_claim_takes_only_the_kinds_asked_for(ladder_home):
    (climb,) = _queued(1, "climb")
    assert store.claim_next("w", ("eval",)) is None
    assert store.claim_next("w", ("eval", "climb")).id == climb


def test_an_expired_lease_goes_back_to_the_queue_and_fails_after_max_attempts(ladder_home, monkeypatch):
    monkeypatch.setenv("LADDER_QUEUE_LEASE_S", "0.2")
    (task_id,) = _queued(1)
    for attempt in range(1, MAX_ATTEMPTS + 1):
        task = store.claim_next(f"dead-{attempt}", ("eval",))
        assert task.id == task_id and task.attempts == attempt and task.worker_id == f"dead-{attempt}"
        assert store.reclaim_stale() == []  # the lease still holds
        time.sleep(0.3)  # the worker never renews: as if it had been killed
        assert store.reclaim_stale() == [task_id]
        after = store.get(task_id)
        if attempt < MAX_ATTEMPTS:
            assert after.status == "queued" and after.worker_id is None and after.attempts == attempt
        # the worker that lost it can neither finish it nor renew it
        with pytest.raises(LeaseLost):
            store.complete(task_id, f"dead-{attempt}", "eval-run", lambda: pytest.fail("saved after the lease"))
        assert not store.renew(task_id, f"dead-{attempt}").ours
    failed = store.get(task_id)
    assert failed.status == "failed" and failed.finished_at and failed.run_id is None
    assert failed.error["code"] == "worker_died"
    assert f"stopped {MAX_ATTEMPTS} times" in failed.error["message"] and "start a new eval" in failed.error["message"]
    assert store.claim_next("w", ("eval",)) is None


def test_a_renewed_lease_is_kept_and_the_result_is_written_once(ladder_home, monkeypatch):
    monkeypatch.setenv("LADDER_QUEUE_LEASE_S", "0.3")
    (task_id,) = _queued(1)
    store.claim_next("alive", ("eval",))
    for _ in range(4):  # 0.6 s: twice the lease, renewed every 0.15 s
        time.sleep(0.15)
        lease = store.renew(task_id, "alive", {"done": 1, "total": 2})
        assert lease.ours and not lease.cancel_requested
        assert store.reclaim_stale() == []
    saved = []
    assert store.complete(task_id, "alive", "eval-run", lambda: saved.append(1), progress={"done": 2}) == "succeeded"
    done = store.get(task_id)
    assert saved == [1] and done.status == "succeeded" and done.run_id == "eval-run" and done.progress == {"done": 2}
    with pytest.raises(LeaseLost):  # a second completion (a duplicate worker) writes nothing
        store.complete(task_id, "alive", "eval-other", lambda: saved.append(2))
    assert saved == [1] and store.get(task_id).run_id == "eval-run"


def test_a_failing_save_leaves_the_task_running_and_unsaved(ladder_home):
    (task_id,) = _queued(1)
    store.claim_next("w", ("eval",))

    def save() -> None:
        get_db().execute(
            "INSERT INTO climbs(id, project_id, config, summary, created_at) VALUES ('c1', ?, '{}', '{}', 0)",
            (DEFAULT_PROJECT,),
        )
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        store.complete(task_id, "w", "c1", save)
    assert store.get(task_id).status == "running"
    assert get_db().one("SELECT COUNT(*) AS n FROM climbs")["n"] == 0  # rolled back with the status


def test_cancel_ends_a_queued_task_at_once_and_flags_a_running_one(ladder_home):
    running, queued = _queued(2)
    assert store.claim_next("w", ("eval",)).id == running  # the older one runs, the other waits
    t = store.request_cancel(queued, DEFAULT_PROJECT, "eval")
    assert t.status == "cancelled" and t.cancel_requested and t.finished_at
    assert store.claim_next("w2", ("eval",)) is None  # a cancelled task is never claimed
    r = store.request_cancel(running, DEFAULT_PROJECT, "eval")
    assert r.status == "running" and r.cancel_requested
    assert store.renew(running, "w").cancel_requested
    # a worker that finishes anyway does not store a result for a cancelled task
    assert store.complete(running, "w", "eval-run", lambda: pytest.fail("saved a cancelled result")) == "cancelled"
    assert store.get(running).run_id is None
    with pytest.raises(Conflict):
        store.request_cancel(running, DEFAULT_PROJECT, "eval")
    with pytest.raises(NotFound):
        store.request_cancel(running, DEFAULT_PROJECT, "climb")  # the wrong kind is not found


def test_release_hands_a_task_back_without_counting_an_attempt(ladder_home):
    (task_id,) = _queued(1)
    store.claim_next("w", ("eval",))
    assert store.release(task_id, "w")
    t = store.get(task_id)
    assert t.status == "queued" and t.attempts == 0 and t.worker_id is None
    assert store.claim_next("w2", ("eval",)).attempts == 1


def test_postgres_claims_skip_locked_rows_and_never_wait_for_the_write_lock(postgres_url, monkeypatch):
    """On PostgreSQL a claim takes the next unlocked row and runs outside the global write lock."""
    import psycopg

    from ladder.settings import reset_settings
    from ladder.store.db import reset_dbs
    from ladder.store.postgres import WRITE_LOCK

    monkeypatch.setenv("LADDER_DATABASE_URL", postgres_url)
    reset_settings()
    reset_dbs()
    assert get_db().engine == "postgresql"
    first, second = _queued(2)
    with psycopg.connect(postgres_url) as other:  # another worker, mid-claim of the oldest task ...
        other.execute("SELECT id FROM tasks WHERE id=%s FOR UPDATE", (first,))
        other.execute("SELECT pg_advisory_xact_lock(%s)", (WRITE_LOCK,))  # ... and a writer holding the lock
        got: list = []
        t = threading.Thread(target=lambda: got.append(store.claim_next("w", ("eval",))))
        t.start()
        t.join(10)
        assert not t.is_alive(), "the claim waited for a lock"
        assert got[0].id == second
        other.rollback()
    assert store.claim_next("w", ("eval",)).id == first
    reset_dbs()
