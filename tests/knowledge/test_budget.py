"""The embedding budget: chunks per upload (413) and chunks per project per 24 hours (429), before any embedding."""

from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient

from ladder.errors import QuotaExceeded, TooLarge
from ladder.knowledge import embedder as embedder_mod
from ladder.knowledge import service
from ladder.settings import reset_settings
from ladder.store.db import get_db
from ladder.store.usage import UsageRecord, record
from tests.knowledge.conftest import HashEmbedder


class CountingEmbedder(HashEmbedder):
    """Counts the texts it was asked to embed: the budget must refuse before any are."""

    def __init__(self):
        super().__init__()
        self.embedded = 0

    def embed(self, texts):
        self.embedded += len(texts)
        return super().embed(texts)


@pytest.fixture
def emb(monkeypatch):
    e = CountingEmbedder()
    previous = embedder_mod.set_embedder(e)
    monkeypatch.setenv("LADDER_MAX_CHUNKS_PER_DOCUMENT", "20")
    monkeypatch.setenv("LADDER_EMBED_CHUNKS_PER_DAY", "50")
    reset_settings()
    yield e
    embedder_mod.set_embedder(previous)


def _text(paragraphs: int) -> bytes:
    # each paragraph is its own chunk at chunk_size 16 (HashEmbedder counts ~4 characters a token)
    return "\n\n".join(f"Paragraph {i} says something about topic {i}." for i in range(paragraphs)).encode()


def _chunks() -> int:
    return get_db().one("SELECT COUNT(*) AS n FROM kb_chunks")["n"]


def test_an_upload_over_the_chunk_limit_is_refused_before_embedding(emb):
    service.create_kb("kb", chunk_size=16, chunk_overlap=0)
    with pytest.raises(TooLarge, match=r"big.txt: \d+ chunks is over the limit of 20 chunks per upload") as e:
        service.add_document("kb", "big.txt", _text(40))
    assert e.value.status == 413 and "LADDER_MAX_CHUNKS_PER_DOCUMENT" in e.value.message
    assert emb.embedded == 0 and _chunks() == 0
    assert service.add_document("kb", "small.txt", _text(10)).chunks == 10


def test_the_daily_budget_counts_the_usage_ledger(emb):
    service.create_kb("kb", chunk_size=16, chunk_overlap=0)
    for i in range(2):
        service.add_document("kb", f"part{i}.txt", _text(20) + b" %d" % i)  # 40 of the 50 chunks
    embedded = emb.embedded
    with pytest.raises(QuotaExceeded, match=r"budget of 50 chunks in 24 hours \(40 used") as e:
        service.add_document("kb", "more.txt", _text(15))
    assert e.value.status == 429 and "retry after" in e.value.message
    assert emb.embedded == embedded and _chunks() == 40
    # another project has its own budget; ledger rows older than 24 hours no longer count
    from ladder.server.keys import project_by_name

    other = project_by_name("other", create=True)
    service.create_kb("kb", chunk_size=16, chunk_overlap=0, project_id=other)
    assert service.add_document("kb", "more.txt", _text(15), project_id=other).chunks == 15
    get_db().execute("UPDATE usage SET created_at = ? WHERE project_id='proj-default'", (time.time() - 25 * 3600,))
    assert service.add_document("kb", "more.txt", _text(15)).chunks == 15


def test_over_http_the_limits_are_413_and_429(emb, ladder_home):
    from ladder.server.app import create_app
    from ladder.server.config import ServerConfig

    client = TestClient(create_app(ServerConfig(require_keys=False)))
    assert client.post("/api/kbs", json={"name": "kb", "chunk_size": 16, "chunk_overlap": 0}).status_code == 200
    r = client.post("/api/kbs/kb/documents", files={"file": ("big.txt", _text(40))})
    assert r.status_code == 413 and r.json()["error"]["code"] == "too_many_chunks"
    record(UsageRecord(model=emb.name, kind="embed", embedded_chunks=45))
    r = client.post("/api/kbs/kb/documents", files={"file": ("ten.txt", _text(10))})
    assert r.status_code == 429 and r.json()["error"]["code"] == "embedding_budget_exceeded"
    assert r.json()["error"]["type"] == "rate_limit_error" and emb.embedded == 0
