"""Reciprocal-rank fusion of the keyword and the vector rankings, shared by both engines' search."""

from __future__ import annotations

from collections.abc import Callable

# score = sum of weight / (RRF_K + rank). Cormack et al. use k=60; a smaller k trusts the top ranks
# more. k=10 (with the weights in index.DEFAULT_WEIGHTS and headings 2x in BM25) was chosen on
# bench/retrieval.py (covid_faq).
RRF_K = 10
MIN_CANDIDATES = 50


def depth_for(k: int, depth: int | None = None) -> int:
    """How many candidates each side ranks for a search that returns k."""
    return depth or max(MIN_CANDIDATES, 4 * k)


def fuse(
    bm25_rank: dict[int, int],
    dense_rank: dict[int, int],
    similarity: Callable[[int], float],
    weights: tuple[float, float],
    threshold: float | None,
) -> list[tuple[int, float, int | None, int | None, float]]:
    """(rowid, fused score, bm25 rank, dense rank, similarity), best first; below `threshold` dropped."""
    wb, wd = weights
    fused = []
    for rowid in set(dense_rank) | set(bm25_rank):
        br, dr = bm25_rank.get(rowid), dense_rank.get(rowid)
        score = (wb / (RRF_K + br) if br else 0.0) + (wd / (RRF_K + dr) if dr else 0.0)
        sim = similarity(rowid)
        if threshold is not None and sim < threshold:
            continue
        fused.append((rowid, score, br, dr, sim))
    fused.sort(key=lambda t: (-t[1], -t[4], t[0]))
    return fused
