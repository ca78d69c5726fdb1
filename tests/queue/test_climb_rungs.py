"""A queued climb runs its rungs as tasks of their own: the same climb as in-process, cancel, failure, restarts."""

from __future__ import annotations

import time

from ladder.queue import climbs, store
from ladder.queue.worker import QueueWorker
from ladder.store.db import DEFAULT_PROJECT, get_db
from tests.queue.helpers import wait_for

TEST = [
    ("my bill is wrong", "billing"),
    ("parcel late", "shipping"),
    ("charged twice", "billing"),
    ("where is my box", "shipping"),
]


def _train(n: int = 12) -> list[tuple[str, str]]:
    return [
        (f"message number {i} about {'bills' if i % 2 else 'parcels'}", "billing" if i % 2 else "shipping")
        for i in range(n)
    ]


def _upload(pairs, name: str) -> str:
    import json

    from ladder.store import files

    data = "".join(json.dumps({"input": q, "output": a}) + "\n" for q, a in pairs).encode()
    return files.upload(data, name, "eval").id


def _queue_climb(train=None, test=None, **kw):
    params = climbs.ClimbParams(
        _upload(train or _train(), "train.jsonl"),
        _upload(test or TEST, "test.jsonl"),
        model="tiny-llama",
        retrieved=False,  # the retrieved-shots rung needs the real embedder; these tests are about the queue
        **kw,
    )
    return store.enqueue("climb", DEFAULT_PROJECT, climbs.prepare(params, DEFAULT_PROJECT).as_dict())


def _eval_runs() -> list[str]:
    return sorted(r["id"] for r in get_db().query("SELECT id FROM eval_runs"))


def _in_process(train, test, **kw):
    from ladder.climb.runner import ClimbOptions, climb, parse_target
    from ladder.evals.testset import items_from_pairs

    opts = ClimbOptions(model="tiny-llama", retrieved=False, **kw)
    opts.target = parse_target(opts.target) if isinstance(opts.target, str) else opts.target
    return climb(items_from_pairs(train), items_from_pairs(test), opts, save=lambda result, runs: None)


def _summary(task) -> dict:
    import json

    return json.loads(get_db().one("SELECT summary FROM climbs WHERE id=?", (task.run_id,))["summary"])


def test_a_climbs_rungs_are_tasks_and_it_recommends_what_the_in_process_climb_does(engine):
    for target in (None, "accuracy=100.5"):  # no target: rungs together; a target: one after another
        task = _queue_climb(target=target)
        worker = QueueWorker(("climb", "rung"), concurrency=2, interval_s=0.05).start()
        try:
            wait_for(lambda t=task: store.get(t.id).done, what="the climb")
        finally:
            worker.stop()
        done = store.get(task.id)
        assert done.status == "succeeded", done.error
        children = store.children(task.id)
        assert [c.params["name"] for c in children] == ["prompt", "few-shot fixed k=4"]
        assert all(c.kind == "rung" and c.status == "succeeded" and c.attempts == 1 for c in children)
        summary = _summary(done)
        assert [r["run"] for r in summary["rungs"][:2]] == [c.run_id for c in children]  # each rung's own run
        assert sorted(c.run_id for c in children) == sorted(set(_eval_runs()) & {c.run_id for c in children})

        local = _in_process(_train(), TEST, target=target)
        assert summary["recommendation"] == local.recommendation  # the same rungs, the same choice
        assert [r["name"] for r in summary["rungs"]] == [r.name for r in local.rungs]
        assert [r["value"] for r in summary["rungs"]] == [r.value(local.headline) for r in local.rungs]
        assert "below the classification minimum" in summary["rungs"][-1]["skipped"]
        assert done.progress["done"] == done.progress["total"] == 2
        assert {r["status"] for r in done.progress["rungs"]} == {"succeeded"}
    assert len(_eval_runs()) == 4  # two climbs, two rungs each: one stored run per rung task


def test_a_one_slot_worker_runs_a_climb_and_its_rungs(engine):
    """The server's embedded worker has one slot: the waiting climb runs its rungs in it."""
    from ladder.queue.embedded import KINDS

    task = _queue_climb(target="accuracy=100.5")
    assert QueueWorker(KINDS).run_one().id == task.id  # one call: the climb, its rungs run inside it
    done = store.get(task.id)
    assert done.status == "succeeded", done.error
    assert [c.status for c in store.children(task.id)] == ["succeeded", "succeeded"]


def test_cancelling_a_climb_cancels_its_rungs(engine, monkeypatch):
    monkeypatch.setenv("LADDER_QUEUE_HEARTBEAT_S", "0.1")
    words = " ".join(f"word{i}" for i in range(30))
    train = [(f"question {i}", f"{words} {i}") for i in range(6)]  # long answers: slow rungs
    test = [(f"question {i}", f"{words} {i}") for i in range(48)]
    task = _queue_climb(train, test, task="open")
    worker = QueueWorker(("climb",), interval_s=0.05).start()  # one slot: the rungs run in the climb's
    try:
        running = wait_for(lambda: any(c.status == "running" for c in store.children(task.id)), what="a running rung")
        assert running
        store.request_cancel(task.id, DEFAULT_PROJECT, "climb")
        wait_for(lambda: store.get(task.id).done, what="the cancel")
    finally:
        worker.stop()
    assert store.get(task.id).status == "cancelled"
    children = store.children(task.id)
    assert children and {c.status for c in children} == {"cancelled"}, [(c.params["name"], c.status) for c in children]
    assert _eval_runs() == [] and get_db().one("SELECT COUNT(*) AS n FROM climbs")["n"] == 0


def _stop_when_rungs_are_queued(task) -> list:
    """Run the climb until it has queued its rungs, then stop its worker (it hands everything back)."""
    worker = QueueWorker(("climb",), interval_s=0.05).start()
    try:
        wait_for(lambda: store.children(task.id), what="the rungs")
    finally:
        worker.stop()
    return store.children(task.id)


def test_a_failed_rung_fails_the_climb_naming_it(engine):
    task = _queue_climb()  # no target: both prompt rungs are queued together
    _stop_when_rungs_are_queued(task)
    assert store.get(task.id).status == "queued"
    # A worker takes a rung and it fails (as the worker records a rung whose eval raised).
    rung = store.claim_next("another-worker", ("rung",))
    store.end(rung.id, "another-worker", "failed", {"code": "model_unavailable", "message": "the model went away"})
    QueueWorker(("climb",)).run_one()
    failed = store.get(task.id)
    assert failed.status == "failed"
    assert failed.error["code"] == "model_unavailable"
    assert rung.params["name"] in failed.error["message"] and rung.id in failed.error["message"]
    assert "the model went away" in failed.error["message"]
    assert all(c.done for c in store.children(task.id))  # the other rung was stopped with it
    assert get_db().one("SELECT COUNT(*) AS n FROM climbs")["n"] == 0


def test_a_rung_handed_back_by_a_stopped_worker_runs_once_more_and_the_climb_once(engine, monkeypatch):
    monkeypatch.setenv("LADDER_QUEUE_HEARTBEAT_S", "0.1")
    words = " ".join(f"word{i}" for i in range(30))
    train = [(f"question {i}", f"{words} {i}") for i in range(6)]
    test = [(f"question {i}", f"{words} {i}") for i in range(48)]
    task = _queue_climb(train, test, task="open", target="rouge_l=100.5")  # never met: prompt, then few-shot
    worker = QueueWorker(("climb", "rung"), interval_s=0.05).start()
    try:
        wait_for(
            lambda: any((c.progress or {}).get("done") for c in store.children(task.id)), what="a rung's first batch"
        )
    finally:
        worker.stop()
    (rung,) = store.children(task.id)
    assert rung.status == "queued" and rung.attempts == 0 and store.get(task.id).status == "queued"
    assert _eval_runs() == []

    again = [QueueWorker(("climb", "rung"), interval_s=0.05) for _ in range(2)]  # two workers now
    for w in again:
        w.start()
    try:
        wait_for(lambda: store.get(task.id).done, what="the climb")
    finally:
        for w in again:
            w.stop()
    done = store.get(task.id)
    assert done.status == "succeeded", done.error
    children = store.children(task.id)
    assert [c.params["name"] for c in children] == ["prompt", "few-shot fixed k=4"]  # none queued twice
    assert all(c.status == "succeeded" and c.attempts == 1 for c in children)
    assert _eval_runs() == sorted(c.run_id for c in children)  # one stored run per rung
    assert sum(task.id in w.finished for w in again) == 1  # the climb finished on one worker
    assert get_db().one("SELECT COUNT(*) AS n FROM climbs")["n"] == 1


def test_a_worker_killed_mid_rung_leaves_the_rung_to_run_once_more(tiny_model):
    import signal

    from tests.queue.test_worker import _worker_process

    words = " ".join(f"word{i}" for i in range(30))
    train = [(f"question {i}", f"{words} {i}") for i in range(6)]
    test = [(f"question {i}", f"{words} {i}") for i in range(48)]
    task = _queue_climb(train, test, task="open", target="rouge_l=0")  # met at once: the prompt rung only
    proc = _worker_process("--kinds", "climb,rung", "--interval", "0.1")
    try:
        wait_for(
            lambda: any(c.status == "running" for c in store.children(task.id)), timeout=120, what="a running rung"
        )
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    (rung,) = store.children(task.id)
    assert sorted(store.reclaim_stale()) == sorted([task.id, rung.id])  # both were the dead worker's
    assert QueueWorker(("climb",)).run_one().id == task.id
    done, (rung,) = store.get(task.id), store.children(task.id)
    assert done.status == "succeeded" and done.attempts == 2, done.error
    assert rung.status == "succeeded" and rung.attempts == 2  # run again, once
    assert _eval_runs() == [rung.run_id]  # the killed attempt stored nothing


def test_a_waiting_climb_reclaims_a_rung_whose_worker_died(engine, monkeypatch):
    """Every slot waits in a climb (none free to reclaim): the climb itself puts the dead worker's rung back."""
    monkeypatch.setenv("LADDER_QUEUE_HEARTBEAT_S", "0.1")
    words = " ".join(f"word{i}" for i in range(30))
    train = [(f"question {i}", f"{words} {i}") for i in range(6)]
    test = [(f"question {i}", f"{words} {i}") for i in range(24)]
    task = _queue_climb(train, test, task="open", target="rouge_l=100.5")
    worker = QueueWorker(("climb", "rung"), interval_s=0.05).start()
    try:
        wait_for(lambda: store.children(task.id), what="the first rung queued")
    finally:
        worker.stop()
    (rung,) = store.children(task.id)
    assert rung.status == "queued"
    # The rung's worker is on another machine and about to vanish: its lease outlives the next claim.
    with get_db().tx() as conn:
        conn.execute(
            "UPDATE tasks SET status='running', worker_id='gone', worker_host='elsewhere', worker_pid=1,"
            " lease_expires_at=?, attempts=1 WHERE id=?",
            (time.time() + 1.0, rung.id),
        )
    only = QueueWorker(("climb",), interval_s=0.05).start()  # one slot; it takes climbs, not rungs
    try:
        wait_for(lambda: store.get(task.id).done, timeout=120, what="the climb")
    finally:
        only.stop()
    done = store.get(task.id)
    assert done.status == "succeeded", done.error
    children = store.children(task.id)
    assert all(c.status == "succeeded" for c in children) and children[0].attempts == 2
