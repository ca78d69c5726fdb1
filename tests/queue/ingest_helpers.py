"""Large KB uploads for the ingest task tests: a small queue threshold, many-chunk documents, a gated embedder."""

from __future__ import annotations

import threading

import pytest

from ladder.knowledge import embedder as embedder_mod
from ladder.store.db import get_db
from tests.knowledge.conftest import HashEmbedder

QUEUE_BYTES = 4096


def big_doc(n: int = 300, word: str = "refund") -> bytes:
    """Markdown of `n` short paragraphs: with 16-token chunks, about n chunks (three embedding batches at 300)."""
    return "\n\n".join(f"Paragraph {i} says the {word} window {i} is open." for i in range(n)).encode()


class GatedEmbedder(HashEmbedder):
    """Stops inside its `block_at`-th batch (of more than one text; queries are one) until `go` is set."""

    def __init__(self, block_at: int = 2):
        super().__init__()
        self.block_at, self.batches = block_at, 0
        self.reached, self.go = threading.Event(), threading.Event()

    def embed(self, texts):
        if len(texts) > 1:
            self.batches += 1
            if self.batches == self.block_at:
                self.reached.set()
                assert self.go.wait(60), "the test never opened the gate"
        return super().embed(texts)


@pytest.fixture
def queue_threshold(monkeypatch):
    """Uploads over QUEUE_BYTES are queued; the heartbeat is quick so a cancel is seen at once."""
    from ladder.settings import reset_settings

    monkeypatch.setenv("LADDER_KB_QUEUE_BYTES", str(QUEUE_BYTES))
    monkeypatch.setenv("LADDER_QUEUE_HEARTBEAT_S", "0.05")
    reset_settings()
    return QUEUE_BYTES


@pytest.fixture
def gated_embedder():
    emb = GatedEmbedder()
    previous = embedder_mod.set_embedder(emb)
    yield emb
    emb.go.set()
    embedder_mod.set_embedder(previous)


@pytest.fixture
def hash_embedder():
    emb = HashEmbedder()
    previous = embedder_mod.set_embedder(emb)
    yield emb
    embedder_mod.set_embedder(previous)


def rows(table: str) -> int:
    return get_db().one(f"SELECT COUNT(*) AS n FROM {table}")["n"]


def knowledge_files() -> list[str]:
    return [r["id"] for r in get_db().query("SELECT id FROM files WHERE purpose='knowledge'")]
