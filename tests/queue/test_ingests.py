"""Ingest tasks on the real store: nothing is searchable before the task succeeds, and a failure, a cancel or a
stopped worker leaves no document behind; another worker then commits it exactly once."""

from __future__ import annotations

import json
import threading

import pytest

from ladder.errors import InvalidInput, NotFound, QuotaExceeded
from ladder.knowledge import service
from ladder.knowledge.records import AddResult
from ladder.queue import ingests, store
from ladder.queue.worker import QueueWorker
from ladder.store.db import DEFAULT_PROJECT
from ladder.store.usage import UsageRecord, record
from tests.queue.helpers import wait_for
from tests.queue.ingest_helpers import big_doc, knowledge_files, rows

P = DEFAULT_PROJECT


def _kb(name: str = "docs") -> str:
    service.create_kb(name, chunk_size=16, chunk_overlap=0)
    return name


def _queue(data: bytes, name: str = "handbook.md", kb: str = "docs", **kw):
    out = ingests.queue_upload(kb, name, data, project_id=P, **kw)
    assert not isinstance(out, AddResult), out
    return out


def test_a_queued_ingest_is_searchable_only_once_it_has_succeeded(hash_embedder, queue_threshold):
    kb = _kb()
    task = _queue(big_doc())
    assert task.status == "queued" and task.id.startswith("ingest-") and task.params["kb"] == kb
    assert knowledge_files() == [task.params["file_id"]]  # the bytes are stored before any work
    assert service.search(kb, "refund window", project_id=P) == [] and rows("kb_docs") == 0
    assert [t.id for t in ingests.list_ingests(kb, P, pending=True)] == [task.id]

    ran = QueueWorker(("ingest",)).run_one()
    assert ran is not None and ran.id == task.id
    done = store.get(task.id)
    assert done.status == "succeeded", done.error
    docs = ingests.result_docs(done)
    n = docs[0].n_chunks
    assert [d.name for d in docs] == ["handbook.md"] and n > 256  # three embedding batches
    assert done.progress == {"stage": "committing", "done": n, "total": n}
    assert rows("kb_chunks") == n and docs[0].file_id == task.params["file_id"]
    hits = service.search(kb, "refund window 7", project_id=P)
    assert hits and hits[0].doc_name == "handbook.md"
    assert ingests.list_ingests(kb, P, pending=True) == []
    ledger = [r["embedded_chunks"] for r in _embed_usage()]
    assert ledger == [n]  # metered once, as a synchronous upload is


def _embed_usage():
    from ladder.store.db import get_db

    return get_db().query("SELECT embedded_chunks FROM usage WHERE kind='embed'")


def test_a_failing_parse_fails_the_task_with_its_reason_and_leaves_nothing(hash_embedder, queue_threshold):
    _kb()
    bad = b'{"text": "fine row"}\n' * 300 + b"{not json\n"
    task = _queue(bad, "faq.jsonl")
    QueueWorker(("ingest",)).run_one()
    done = store.get(task.id)
    assert done.status == "failed"
    assert "faq.jsonl" in done.error["message"] and "301" in done.error["message"], done.error  # file and line
    assert rows("kb_docs") == rows("kb_chunks") == 0
    assert knowledge_files() == []  # its upload went with it


def test_what_can_be_checked_is_refused_when_queued(hash_embedder, queue_threshold):
    _kb()
    with pytest.raises(InvalidInput, match="unsupported file type"):
        ingests.queue_upload("docs", "slides.pptx", big_doc(), project_id=P)
    with pytest.raises(NotFound, match="no knowledge base 'nope'"):
        ingests.queue_upload("nope", "a.md", big_doc(), project_id=P)
    with pytest.raises(InvalidInput, match="policy"):
        ingests.queue_upload("docs", "a.md", big_doc(), project_id=P, policy="merge")
    record(UsageRecord(model="hash-64", kind="embed", embedded_chunks=20_000, project_id=P))
    with pytest.raises(QuotaExceeded, match="LADDER_EMBED_CHUNKS_PER_DAY"):
        ingests.queue_upload("docs", "a.md", big_doc(), project_id=P)
    assert rows("tasks") == 0 and knowledge_files() == []


def test_the_embedding_budget_is_checked_again_by_the_worker(hash_embedder, queue_threshold, monkeypatch):
    from ladder.settings import reset_settings

    _kb()
    monkeypatch.setenv("LADDER_EMBED_CHUNKS_PER_DAY", "400")
    reset_settings()
    task = _queue(big_doc())  # budget left when queued ...
    record(UsageRecord(model="hash-64", kind="embed", embedded_chunks=200, project_id=P))  # ... spent meanwhile
    QueueWorker(("ingest",)).run_one()
    done = store.get(task.id)
    assert done.status == "failed" and done.error["code"] == "embedding_budget_exceeded", done.error
    assert rows("kb_docs") == 0 and knowledge_files() == []


def test_same_content_is_unchanged_at_once_and_not_queued(hash_embedder, queue_threshold):
    _kb()
    first = service.add_document("docs", "handbook.md", big_doc(), project_id=P)
    again = ingests.queue_upload("docs", "copy.md", big_doc(), project_id=P)
    assert isinstance(again, AddResult) and again.status == "unchanged"
    assert [d.id for d in again.docs] == [d.id for d in first.docs] and rows("tasks") == 0


def test_cancel_mid_ingest_leaves_nothing(gated_embedder, queue_threshold):
    _kb()
    task = _queue(big_doc())
    worker = QueueWorker(("ingest",), interval_s=0.05).start()
    try:
        assert gated_embedder.reached.wait(30), "the ingest never reached its second batch"
        assert service.search("docs", "refund window", project_id=P) == []  # half-embedded: nothing visible
        flagged = ingests.cancel_ingest("docs", task.id, P)
        assert flagged.cancel_requested and flagged.status == "running"
        threading.Event().wait(0.3)  # the heartbeat (every 0.05 s) tells the running task
        gated_embedder.go.set()
        wait_for(lambda: store.get(task.id).done, what="the cancel")
    finally:
        worker.stop()
    done = store.get(task.id)
    assert done.status == "cancelled" and done.run_id is None
    assert worker.finished[task.id] == "cancelled"
    assert rows("kb_docs") == rows("kb_chunks") == 0 and knowledge_files() == [] and _embed_usage() == []


def test_cancel_a_queued_ingest_ends_it_and_its_upload_at_once(hash_embedder, queue_threshold):
    from ladder.errors import Conflict

    _kb()
    _kb("other")
    task = _queue(big_doc())
    with pytest.raises(NotFound):  # another KB's ingest is not found under this one
        ingests.cancel_ingest("other", task.id, P)
    done = ingests.cancel_ingest("docs", task.id, P)
    assert done.status == "cancelled" and done.finished_at and knowledge_files() == []
    with pytest.raises(Conflict, match="already cancelled"):
        ingests.cancel_ingest("docs", task.id, P)
    assert QueueWorker(("ingest",)).run_one() is None


def test_a_stopped_worker_hands_the_ingest_to_another_that_commits_it_once(gated_embedder, queue_threshold):
    _kb()
    task = _queue(big_doc())
    first = QueueWorker(("ingest",), interval_s=0.05).start()
    assert gated_embedder.reached.wait(30), "the ingest never reached its second batch"
    stopping = threading.Thread(target=first.stop)
    stopping.start()  # as Ctrl-C on `ladder worker`: the task stops at its next batch and goes back
    wait_for(lambda: first._halt.is_set(), what="the stop")
    gated_embedder.go.set()
    stopping.join(30)
    assert first.finished[task.id] == "released"
    back = store.get(task.id)
    assert back.status == "queued" and back.attempts == 0 and rows("kb_docs") == 0
    assert knowledge_files() == [task.params["file_id"]]  # kept for the next worker

    second = QueueWorker(("ingest",))
    assert second.run_one().id == task.id
    done = store.get(task.id)
    assert done.status == "succeeded" and done.attempts == 1, done.error
    docs = service.list_docs("docs", project_id=P)
    assert len(docs) == 1 and rows("kb_chunks") == docs[0].n_chunks == done.progress["total"]
    assert [r["embedded_chunks"] for r in _embed_usage()] == [docs[0].n_chunks]  # metered once
    assert second.finished == {task.id: "succeeded"}


def test_a_replace_through_the_queue_swaps_the_old_version_in_one_commit(hash_embedder, queue_threshold):
    from ladder.store.blobs import blob_path

    _kb()
    old = service.add_document("docs", "handbook.md", big_doc(word="shipping"), project_id=P)
    old_file = old.docs[0].file_id
    task = _queue(big_doc(word="refund"))
    assert service.search("docs", "shipping window", project_id=P)  # the old one serves until the commit
    QueueWorker(("ingest",)).run_one()
    assert store.get(task.id).status == "succeeded"
    docs = service.list_docs("docs", project_id=P)
    assert [d.file_id for d in docs] == [task.params["file_id"]]
    assert knowledge_files() == [task.params["file_id"]] and not blob_path(old_file).exists()  # removed after


def test_the_cli_queues_lists_and_cancels_ingests(hash_embedder, queue_threshold, tmp_path):
    from typer.testing import CliRunner

    from ladder.cli.main import app

    _kb()
    path = tmp_path / "handbook.md"
    path.write_bytes(big_doc())
    runner = CliRunner()
    added = runner.invoke(app, ["kb", "add", "docs", str(path), "--queue"])
    assert added.exit_code == 0, added.output
    [task] = ingests.list_ingests("docs", P)
    assert f"queued: handbook.md as {task.id}" in added.output and rows("kb_docs") == 0
    assert "1 more queued or running: `ladder kb ingests docs`" in runner.invoke(app, ["kb", "docs", "docs"]).output
    listed = runner.invoke(app, ["kb", "ingests", "docs", "--json"])
    assert listed.exit_code == 0 and [t["status"] for t in json.loads(listed.output)] == ["queued"]
    cancelled = runner.invoke(app, ["kb", "cancel-ingest", "docs", task.id])
    assert cancelled.exit_code == 0 and f"{task.id}: cancelled" in cancelled.output
    assert store.get(task.id).status == "cancelled" and knowledge_files() == []
