"""Few-shot examples retrieved per request: the k training examples most similar to the input."""

from __future__ import annotations

import hashlib
import threading

import numpy as np

_pool_cache: dict[str, np.ndarray] = {}
_lock = threading.Lock()


def _embed(texts: list[str]) -> np.ndarray:
    from ladder.knowledge.embedder import get_embedder

    return np.asarray(get_embedder().embed(texts), dtype=np.float32)


def _pool_vectors(pool: list[dict]) -> np.ndarray:
    key = hashlib.sha256("\x00".join(ex["input"] for ex in pool).encode()).hexdigest()
    with _lock:
        vecs = _pool_cache.get(key)
    if vecs is None:
        vecs = _embed([ex["input"] for ex in pool])
        with _lock:
            _pool_cache[key] = vecs
    return vecs


def nearest(pool: list[dict], queries: list[str], k: int) -> list[list[dict]]:
    """For each query, the k most similar pool examples, most similar last (closest to the question).

    An example identical to the query is skipped, so evaluating on training items does not leak.
    """
    if not pool or not queries or k <= 0:
        return [[] for _ in queries]
    vecs = _pool_vectors(pool)
    q = _embed(queries)
    scores = q @ vecs.T
    out = []
    for qi, row in enumerate(scores):
        order = np.argsort(-row, kind="stable")
        chosen = [int(i) for i in order if pool[int(i)]["input"].strip() != queries[qi].strip()][:k]
        out.append([pool[i] for i in reversed(chosen)])
    return out
