"""Large KB uploads over HTTP: 202 with an `ingest` task, searchable once it succeeds, readable and cancellable."""

from __future__ import annotations

import time

import httpx

from ladder.queue.worker import QueueWorker
from tests.queue.helpers import wait_for
from tests.queue.ingest_helpers import big_doc, knowledge_files, rows


def _h(key: str) -> dict:
    return {"Authorization": f"Bearer {key}"}


def _kb(url: str, key: str, name: str = "docs") -> None:
    r = httpx.post(url + "/api/kbs", json={"name": name, "chunk_size": 16, "chunk_overlap": 0}, headers=_h(key))
    assert r.status_code == 200, r.text


def _upload(url: str, key: str, data: bytes, name: str = "handbook.md", **form) -> httpx.Response:
    return httpx.post(
        url + "/api/kbs/docs/documents", headers=_h(key), files={"file": (name, data)}, data=form, timeout=60
    )


def _get(url: str, key: str, path: str) -> dict:
    r = httpx.get(url + path, headers=_h(key), timeout=30)
    assert r.status_code == 200, r.text
    return r.json()


def _search(url: str, key: str, query: str) -> list:
    r = httpx.post(url + "/api/kbs/docs/search", json={"query": query}, headers=_h(key), timeout=30)
    assert r.status_code == 200, r.text
    return r.json()["data"]


def test_a_large_upload_is_queued_and_searchable_once_its_task_succeeds(
    make_server, hash_embedder, queue_threshold, monkeypatch
):
    monkeypatch.setenv("LADDER_SERVE_WORKER", "0")  # the server only enqueues: the test runs the worker
    srv = make_server()
    url, key = srv.url, srv.admin_key
    _kb(url, key)
    small = _upload(url, key, b"# Small\nthe shipping policy is short\n", "small.md")
    assert small.status_code == 200 and small.json()["status"] == "added"  # as before: ingested at once

    r = _upload(url, key, big_doc())
    assert r.status_code == 202, r.text
    task = r.json()
    assert task["object"] == "ingest.task" and task["status"] == "queued" and task["id"].startswith("ingest-")
    assert task["kb"] == "docs" and task["filename"] == "handbook.md" and task["progress"] is None
    listing = _get(url, key, "/api/kbs/docs/documents")
    assert [d["name"] for d in listing["data"]] == ["small.md"]
    assert [t["id"] for t in listing["ingests"]] == [task["id"]]  # visible, not searchable yet
    assert "handbook.md" not in {h["doc_name"] for h in _search(url, key, "refund window")}

    assert QueueWorker(("ingest",)).run_one().id == task["id"]
    done = _get(url, key, f"/api/kbs/docs/ingests/{task['id']}")
    assert done["status"] == "succeeded", done["error"]
    [doc] = done["result"]["docs"]
    assert doc["name"] == "handbook.md" and done["result"]["chunks"] == doc["n_chunks"] > 256
    assert done["progress"] == {"stage": "committing", "done": doc["n_chunks"], "total": doc["n_chunks"]}
    assert _search(url, key, "refund window 12")[0]["doc_name"] == "handbook.md"
    listing = _get(url, key, "/api/kbs/docs/documents")
    assert sorted(d["name"] for d in listing["data"]) == ["handbook.md", "small.md"] and listing["ingests"] == []
    assert [t["id"] for t in _get(url, key, "/api/kbs/docs/ingests")["data"]] == [task["id"]]


def test_wait_forces_either_way_and_the_servers_worker_runs_ingests(make_server, hash_embedder, queue_threshold):
    srv = make_server()  # with its embedded worker
    url, key = srv.url, srv.admin_key
    _kb(url, key)
    waited = _upload(url, key, big_doc(word="invoice"), "big.md", wait="true")
    assert waited.status_code == 200 and waited.json()["status"] == "added"  # large, but asked to wait

    r = _upload(url, key, b"# Tiny\nthe refund window is 30 days\n", "tiny.md", wait="false")
    assert r.status_code == 202, r.text
    task_id = r.json()["id"]
    wait_for(lambda: _get(url, key, f"/api/kbs/docs/ingests/{task_id}")["status"] != "queued", what="a claim")
    done = wait_for(
        lambda: (t := _get(url, key, f"/api/kbs/docs/ingests/{task_id}"))["status"] in ("succeeded", "failed") and t,
        what="the embedded worker",
    )
    assert done["status"] == "succeeded", done["error"]
    assert _search(url, key, "refund window 30 days")[0]["doc_name"] == "tiny.md"


def test_a_failing_parse_and_bad_requests(make_server, hash_embedder, queue_threshold, monkeypatch):
    monkeypatch.setenv("LADDER_SERVE_WORKER", "0")
    srv = make_server()
    url, key = srv.url, srv.admin_key
    _kb(url, key)
    bad = _upload(url, key, b'{"text": "fine row"}\n' * 300 + b"{not json\n", "faq.jsonl")
    assert bad.status_code == 202, bad.text
    QueueWorker(("ingest",)).run_one()
    failed = _get(url, key, f"/api/kbs/docs/ingests/{bad.json()['id']}")
    assert failed["status"] == "failed" and "faq.jsonl" in failed["error"]["message"], failed
    assert "result" not in failed and rows("kb_docs") == 0 and knowledge_files() == []

    wrong = _upload(url, key, big_doc(), "slides.pptx")  # refused before anything is stored or queued
    assert wrong.status_code == 400 and "unsupported file type" in wrong.json()["error"]["message"]
    assert httpx.get(url + "/api/kbs/docs/ingests/ingest-x", headers=_h(key)).status_code == 404
    other = httpx.get(url + f"/api/kbs/docs/ingests/{bad.json()['id']}", headers=_h(srv.key_b))
    assert other.status_code == 404  # another project's key sees neither the KB nor its ingests
    assert rows("tasks") == 1


def test_cancel_a_running_ingest_over_http(make_server, gated_embedder, queue_threshold):
    srv = make_server()
    url, key = srv.url, srv.admin_key
    _kb(url, key)
    task_id = _upload(url, key, big_doc()).json()["id"]
    assert gated_embedder.reached.wait(60), "the embedded worker never reached the second batch"
    running = wait_for(
        lambda: (
            (t := _get(url, key, f"/api/kbs/docs/ingests/{task_id}"))["progress"]
            and t["progress"]["stage"] == "embedding"
            and t
        ),
        what="the first batch's progress",
    )
    assert running["status"] == "running" and running["progress"]["done"] == 128  # one batch of 4 x 32
    assert running["progress"]["total"] > 256
    c = httpx.post(url + f"/api/kbs/docs/ingests/{task_id}/cancel", headers=_h(key))
    assert c.status_code == 200 and c.json()["cancel_requested"], c.text
    time.sleep(0.3)  # the heartbeat (every 0.05 s) tells the running task
    gated_embedder.go.set()
    done = wait_for(
        lambda: (t := _get(url, key, f"/api/kbs/docs/ingests/{task_id}"))["status"] == "cancelled" and t,
        what="the cancel",
    )
    assert done["finished_at"] and "result" not in done
    assert rows("kb_docs") == rows("kb_chunks") == 0 and knowledge_files() == []
    again = httpx.post(url + f"/api/kbs/docs/ingests/{task_id}/cancel", headers=_h(key))
    assert again.status_code == 409
