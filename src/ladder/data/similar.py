"""Exact and near-duplicate text detection (normalised keys, MinHash with banding, verified Jaccard)."""

from __future__ import annotations

import re
import zlib
from collections import defaultdict
from dataclasses import dataclass

import numpy as np

NEAR_THRESHOLD = 0.8
_PERMS, _BANDS = 64, 16  # 16 bands x 4 rows: a pair at Jaccard 0.8 becomes a candidate with p > 0.999
_MAX_BUCKET = 200  # a huge bucket means many near-identical texts; comparing within it is quadratic
_WORD = re.compile(r"\w+", re.UNICODE)


def normalise(text: str) -> str:
    """Lower case, punctuation and spacing removed: texts equal under this are 'the same' to a reader."""
    return " ".join(_WORD.findall(text.lower()))


def shingles(text: str, k: int = 4) -> frozenset[int]:
    """Character k-grams of the normalised text (robust for the short inputs typical of classification)."""
    t = normalise(text)
    if len(t) <= k:
        return frozenset([zlib.crc32(t.encode())])
    return frozenset(zlib.crc32(t[i : i + k].encode()) for i in range(len(t) - k + 1))


def jaccard(a: frozenset, b: frozenset) -> float:
    if not a and not b:
        return 1.0
    return len(a & b) / len(a | b)


def _signatures(sets: list[frozenset[int]]) -> np.ndarray:
    # Multiply-add-shift hashing (wrapping 64-bit arithmetic, keep the high bits): a universal family,
    # unlike (a*h+b) mod p with small a, whose minimum sits at the same shingle for every permutation.
    rng = np.random.default_rng(1234)  # fixed, so reports are the same on every run
    a = rng.integers(0, np.iinfo(np.uint64).max, size=_PERMS, dtype=np.uint64, endpoint=True) | np.uint64(1)
    b = rng.integers(0, np.iinfo(np.uint64).max, size=_PERMS, dtype=np.uint64, endpoint=True)
    sig = np.empty((len(sets), _PERMS), dtype=np.uint64)
    for i, s in enumerate(sets):
        h = np.fromiter(s, dtype=np.uint64, count=len(s)) if s else np.zeros(1, dtype=np.uint64)
        sig[i] = ((h[:, None] * a[None, :] + b[None, :]) >> np.uint64(32)).min(axis=0)
    return sig


@dataclass
class Match:
    """Item `i` is similar to item `j` (j < i within one set; j indexes the other set across sets)."""

    i: int
    j: int
    similarity: float


def _candidates(sig_a: np.ndarray, sig_b: np.ndarray | None) -> set[tuple[int, int]]:
    rows = _PERMS // _BANDS
    pairs: set[tuple[int, int]] = set()
    for band in range(_BANDS):
        sl = slice(band * rows, (band + 1) * rows)
        buckets: dict[bytes, tuple[list[int], list[int]]] = defaultdict(lambda: ([], []))
        for i, row in enumerate(sig_a[:, sl]):
            buckets[row.tobytes()][0].append(i)
        if sig_b is not None:
            for j, row in enumerate(sig_b[:, sl]):
                buckets[row.tobytes()][1].append(j)
        for xs, ys in buckets.values():
            if sig_b is None:
                xs = xs[:_MAX_BUCKET]
                pairs.update((x, y) for n, x in enumerate(xs) for y in xs[:n])
            elif xs and ys:
                pairs.update((x, y) for x in xs[:_MAX_BUCKET] for y in ys[:_MAX_BUCKET])
    return pairs


def _likely(
    pairs: set[tuple[int, int]], sig_a: np.ndarray, sig_b: np.ndarray, threshold: float
) -> list[tuple[int, int]]:
    """Candidates whose MinHash estimate is near the threshold; only these get an exact Jaccard."""
    if not pairs:
        return []
    arr = np.array(sorted(pairs), dtype=np.int64)
    est = (sig_a[arr[:, 0]] == sig_b[arr[:, 1]]).mean(axis=1)
    return [tuple(x) for x in arr[est >= threshold - 0.2].tolist()]


def near_duplicates(texts: list[str], threshold: float = NEAR_THRESHOLD) -> list[Match]:
    """For each text with an earlier text at Jaccard >= threshold (but not equal once normalised),
    the most similar earlier one."""
    keys = [normalise(t) for t in texts]
    sets = [shingles(t) for t in texts]
    best: dict[int, Match] = {}
    sig = _signatures(sets)
    for i, j in _likely(_candidates(sig, None), sig, sig, threshold):
        if keys[i] == keys[j]:
            continue
        s = jaccard(sets[i], sets[j])
        if s >= threshold and (i not in best or (s, -j) > (best[i].similarity, -best[i].j)):
            best[i] = Match(i, j, s)
    return sorted(best.values(), key=lambda m: m.i)


def cross_matches(texts: list[str], others: list[str], threshold: float = NEAR_THRESHOLD) -> list[Match]:
    """For each text, the most similar of `others` at Jaccard >= threshold (1.0: equal once normalised)."""
    if not texts or not others:
        return []
    index = {}
    for j, t in enumerate(others):
        index.setdefault(normalise(t), j)
    best: dict[int, Match] = {}
    for i, t in enumerate(texts):
        if (j := index.get(normalise(t))) is not None:
            best[i] = Match(i, j, 1.0)
    sa, sb = [shingles(t) for t in texts], [shingles(t) for t in others]
    sig_a, sig_b = _signatures(sa), _signatures(sb)
    for i, j in _likely(_candidates(sig_a, sig_b), sig_a, sig_b, threshold):
        if i in best and best[i].similarity == 1.0:
            continue
        s = jaccard(sa[i], sb[j])
        if s >= threshold and (i not in best or (s, -j) > (best[i].similarity, -best[i].j)):
            best[i] = Match(i, j, s)
    return sorted(best.values(), key=lambda m: m.i)
