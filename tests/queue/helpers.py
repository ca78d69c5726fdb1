"""Real eval tasks on the tiny Llama for the queue tests: a label bot, an uploaded test set, a queued task."""

from __future__ import annotations

import time

from ladder.store.db import DEFAULT_PROJECT

BOT = {"max_tokens": 3, "parser": {"kind": "label", "labels": ["yes", "no"]}}


def eval_rows(n: int) -> bytes:
    row = b'{"input": "is %d even?", "output": "%s"}\n'
    return b"".join(row % (i, b"yes" if i % 2 == 0 else b"no") for i in range(n))


def make_bot(model: str, name: str = "judge", project_id: str = DEFAULT_PROJECT) -> str:
    from ladder.pipelines import service

    service.create_bot(name, {"model": model, **BOT}, project_id=project_id)
    return name


def upload_test(n: int, project_id: str = DEFAULT_PROJECT) -> str:
    from ladder.store import files

    return files.upload(eval_rows(n), "test.jsonl", "eval", project_id).id


def queue_eval(bot: str, n: int = 4, project_id: str = DEFAULT_PROJECT):
    """An eval task of `n` items, queued as POST /api/evals queues it."""
    from ladder.queue import evals, store

    params = evals.prepare(bot, upload_test(n, project_id), project_id)
    return store.enqueue("eval", project_id, params.as_dict())


def wait_for(predicate, timeout: float = 120.0, every: float = 0.05, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(every)
