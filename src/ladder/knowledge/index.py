"""Hybrid retrieval: FTS5 BM25 and exact cosine over an in-memory vector matrix, fused by reciprocal rank."""

from __future__ import annotations

import json
import sqlite3
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from ladder.errors import InvalidInput
from ladder.knowledge import delta, fusion, keyword
from ladder.knowledge.records import rowid_range

if TYPE_CHECKING:
    from ladder.store.db import Database

# Fusion weights (the fusion itself is knowledge/fusion.py): chosen on bench/retrieval.py (covid_faq),
# where MiniLM is the stronger signal and BM25 adds exact terms.
DEFAULT_WEIGHTS = {"bm25": 0.5, "dense": 1.0}


@dataclass
class Hit:
    chunk_id: str
    doc_id: str
    doc_name: str
    text: str
    page: int | None
    heading: str | None
    position: int
    score: float  # the fused RRF score (or the reranker's)
    bm25_rank: int | None  # 1-based rank in the keyword list, None when not in it
    dense_rank: int | None  # 1-based rank in the vector list
    metadata: dict = field(default_factory=dict)
    kb: str = ""
    similarity: float = 0.0  # cosine similarity of the chunk to the query

    def as_dict(self) -> dict:
        return dict(self.__dict__)


HEADROOM = 0.1  # spare rows allocated past a matrix's end, so that new documents append in place


class _Store:
    """A float32 buffer that successive matrices of one KB share: each views its first n rows, and
    rows are only ever appended past the last view, so a search holding an older matrix is unaffected."""

    def __init__(self, *parts: np.ndarray):
        n, dim = sum(len(p) for p in parts), parts[0].shape[1]
        self.data = np.empty((n + int(n * HEADROOM) + 256, dim), dtype=np.float32)
        self.filled = 0
        for part in parts:
            self.data[self.filled : self.filled + len(part)] = part
            self.filled += len(part)


@dataclass
class _Matrix:
    generation: int
    vectors_version: int
    rowids: np.ndarray  # int64, ascending; rows of removed chunks stay until the next full read
    doc_ids: np.ndarray  # object array, doc id per row
    alive: np.ndarray  # bool per row: False once its chunk is gone
    store: _Store

    @property
    def vectors(self) -> np.ndarray:  # float32 (n, dim), a view
        return self.store.data[: len(self.rowids)]


class VectorCache:
    """The vector matrices of one database handle's KBs, and the threads that run keyword searches
    beside the cosines: kept in `db.caches`, so they live and die with the handle."""

    def __init__(self):
        self.matrices: dict[str, _Matrix] = {}
        self.lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None

    def pool(self) -> ThreadPoolExecutor:
        with self.lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="ladder-keyword")
            return self._pool

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False)


def vector_cache(db: Database) -> VectorCache:
    with db.caches_lock:
        return db.caches.setdefault("vectors", VectorCache())  # type: ignore[return-value]


def forget(db: Database, kb_id: str) -> None:
    cache = vector_cache(db)
    with cache.lock:
        cache.matrices.pop(kb_id, None)
    if db.engine == "sqlite":
        keyword.forget(db, kb_id)


def load_matrix(conn: sqlite3.Connection, db: Database, kb: dict) -> _Matrix:
    """The KB's vectors, brought up to the KB's generation in the database when it moved on: the
    cached matrix patched with the rows added and removed since, or read again whole after a
    reindex or a large change."""
    cache = vector_cache(db)
    with cache.lock:
        cached = cache.matrices.get(kb["id"])
    if cached is not None and cached.generation == kb["generation"]:
        return cached
    matrix = _patched(conn, cached, kb, cache.lock) if cached is not None else None
    if matrix is None:
        rows = conn.execute(
            "SELECT rowid, doc_id, embedding FROM kb_chunks WHERE rowid BETWEEN ? AND ? ORDER BY rowid",
            rowid_range(kb["num"]),
        ).fetchall()
        rowids, doc_ids, vectors = _arrays(rows, kb["embed_dim"])
        alive = np.ones(len(rowids), dtype=bool)
        matrix = _Matrix(kb["generation"], kb["vectors_version"], rowids, doc_ids, alive, _Store(vectors))
    with cache.lock:
        cache.matrices[kb["id"]] = matrix
    return matrix


def _patched(conn: sqlite3.Connection, cached: _Matrix, kb: dict, lock: threading.Lock) -> _Matrix | None:
    """`cached` with the rows gone marked dead and the rows added since appended; None when it must
    be read whole (a reindex changed vectors in place, or the change or the dead rows are many)."""
    if cached.vectors_version != kb["vectors_version"] or cached.vectors.shape[1] != kb["embed_dim"]:
        return None
    now = delta.rowids_in(conn, "SELECT group_concat(rowid) FROM kb_chunks WHERE kb_id = ?", kb["id"])
    change = delta.row_delta(cached.rowids, now)  # dead rows count as removed again: they bound the patching
    if change is None:
        return None
    rowids, doc_ids, vectors = _read_rows(conn, kb["embed_dim"], change.added.tolist())
    n_old, n_new = len(cached.rowids), len(cached.rowids) + len(rowids)
    store = cached.store
    with lock:
        in_place = store.filled == n_old and len(store.data) >= n_new
        if in_place:
            store.filled = n_new
    if in_place:
        store.data[n_old:n_new] = vectors
    else:
        store = _Store(cached.vectors, vectors)
    return _Matrix(
        kb["generation"],
        kb["vectors_version"],
        np.concatenate([cached.rowids, rowids]),
        np.concatenate([cached.doc_ids, doc_ids]),
        np.concatenate([change.keep, np.ones(len(rowids), dtype=bool)]),
        store,
    )


def _read_rows(conn: sqlite3.Connection, dim: int, rowids: list[int]):
    rows = conn.execute(
        "SELECT rowid, doc_id, embedding FROM kb_chunks WHERE rowid IN (SELECT value FROM json_each(?)) ORDER BY rowid",
        (json.dumps(rowids),),
    ).fetchall()
    return _arrays(rows, dim)


def _arrays(rows: list, dim: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rowids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
    doc_ids = np.array([r[1] for r in rows], dtype=object)
    # a writable buffer (bytearray): torch reads the matrix in place, without a copy
    vectors = np.frombuffer(bytearray().join(r[2] for r in rows), dtype=np.float32).reshape(len(rows), dim)
    return rowids, doc_ids, vectors


def _cosines(vectors: np.ndarray, qvec: np.ndarray) -> np.ndarray:
    """Similarity of every row to the query, by torch rather than numpy: numpy's BLAS threads keep
    spinning after a product and slowed the next query embedding (torch's own pool) 2-5x here."""
    import torch

    if not len(vectors):
        return np.zeros(0, np.float32)
    query = torch.from_numpy(np.ascontiguousarray(qvec, dtype=np.float32))
    return torch.from_numpy(vectors).mv(query).numpy()


def parse_weights(weights: dict | None) -> tuple[float, float]:
    weights = dict(weights or {})
    unknown = set(weights) - {"bm25", "dense"}
    if unknown:
        raise InvalidInput(f"unknown weight {sorted(unknown)[0]!r}; use bm25 and dense", param="weights")
    wb, wd = (
        float(weights.get("bm25", DEFAULT_WEIGHTS["bm25"])),
        float(weights.get("dense", DEFAULT_WEIGHTS["dense"])),
    )
    if wb < 0 or wd < 0 or wb + wd == 0:
        raise InvalidInput("weights must be >= 0 and not both 0", param="weights")
    return wb, wd


def _keyword_ranks(conn, db: Database, kbs: list[dict], words: list[str], allowed_docs, depth: int) -> dict:
    """rowid -> 1-based rank in the keyword list. Per KB over its rowid range; the scores use the
    statistics of the one FTS table, so they compare across KBs."""
    doc_filter = json.dumps(sorted(allowed_docs)) if allowed_docs is not None else None
    found = []
    for kb in kbs:
        scope = keyword.Scope(*rowid_range(kb["num"]), kb["id"], kb["generation"], doc_filter)
        found += keyword.top_rows(conn, db, words, scope, depth)
    found.sort(key=lambda r: (-r[1], r[0]))
    return {row[0]: r for r, row in enumerate(found[:depth], start=1)}


def hybrid(
    conn: sqlite3.Connection,
    db: Database,
    kbs: list[dict],
    query: str,
    qvec: np.ndarray,
    *,
    k: int,
    threshold: float | None,
    allowed_docs: set[str] | None,
    weights: tuple[float, float],
    depth: int | None = None,
) -> list[tuple[int, float, int | None, int | None, float]]:
    """(rowid, fused score, bm25 rank, dense rank, similarity) of the best chunks, best first."""
    wb, wd = weights
    depth = fusion.depth_for(k, depth)
    matrices = [load_matrix(conn, db, kb) for kb in kbs]
    words = keyword.query_words(query) if wb > 0 else []
    # The keyword side runs in a worker thread while this one computes the cosines (both let go of
    # the GIL); only the worker touches the connection until it is done.
    pool = vector_cache(db).pool()
    pending = pool.submit(_keyword_ranks, conn, db, kbs, words, allowed_docs, depth) if words else None
    try:
        sims_by_kb = [_cosines(m.vectors, qvec) for m in matrices]
        for m, sims in zip(matrices, sims_by_kb, strict=True):
            sims[~m.alive] = -np.inf
    finally:
        bm25_rank = pending.result() if pending else {}
    if allowed_docs is not None:
        allowed = np.array(sorted(allowed_docs), dtype=object)
        for m, sims in zip(matrices, sims_by_kb, strict=True):
            sims[~np.isin(m.doc_ids, allowed)] = -np.inf
    dense_rank: dict[int, int] = {}
    if wd > 0:
        cands = []
        for m, sims in zip(matrices, sims_by_kb, strict=True):
            top = min(depth, len(sims))
            if top:
                idx = np.argpartition(-sims, top - 1)[:top]
                cands += [(float(sims[i]), int(m.rowids[i])) for i in idx if np.isfinite(sims[i])]
        cands.sort(key=lambda t: (-t[0], t[1]))
        dense_rank = {rowid: r for r, (_, rowid) in enumerate(cands[:depth], start=1)}

    def similarity(rowid: int) -> float:
        for m, sims in zip(matrices, sims_by_kb, strict=True):
            i = int(np.searchsorted(m.rowids, rowid))
            if i < len(m.rowids) and m.rowids[i] == rowid:
                return float(sims[i])
        return float("-inf")

    return fusion.fuse(bm25_rank, dense_rank, similarity, weights, threshold)
