"""Metrics and their uncertainty: label accuracy/F1, format, JSON fields, ROUGE-L, bootstrap intervals."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

import numpy as np

from ladder.pipelines.parsers import normalise


def exact_match(pred: object, ref: str) -> float:
    return float(pred is not None and normalise(str(pred)) == normalise(ref))


def contains(pred: str, ref: str) -> float:
    """1 when the normalised reference appears as whole words in the normalised output."""
    r = " ".join(_tokens(ref))
    return float(bool(r) and f" {r} " in f" {' '.join(_tokens(pred or ''))} ")


def accuracy(preds: Sequence[object], refs: Sequence[str]) -> float:
    return float(np.mean([exact_match(p, r) for p, r in zip(preds, refs, strict=True)])) if refs else 0.0


def macro_f1(preds: Sequence[object], refs: Sequence[str], labels: Sequence[str] | None = None) -> float:
    """Mean F1 over the labels that occur in the references (a missing prediction is wrong)."""
    p = [normalise(str(x)) if x is not None else None for x in preds]
    r = [normalise(x) for x in refs]
    classes = sorted(set(r)) if labels is None else sorted({normalise(x) for x in labels} & set(r) or set(r))
    f1s = []
    for c in classes:
        tp = sum(1 for a, b in zip(p, r, strict=True) if a == c and b == c)
        fp = sum(1 for a, b in zip(p, r, strict=True) if a == c and b != c)
        fn = sum(1 for a, b in zip(p, r, strict=True) if a != c and b == c)
        f1s.append(0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn))
    return float(np.mean(f1s)) if f1s else 0.0


def _flatten(obj: object, prefix: str = "") -> dict[str, str]:
    if isinstance(obj, dict):
        out: dict[str, str] = {}
        for k, v in obj.items():
            out.update(_flatten(v, f"{prefix}{k}."))
        return out
    if isinstance(obj, list):
        return {f"{prefix[:-1]}": "|".join(sorted(normalise(str(x)) for x in obj))} if prefix else {}
    return {prefix[:-1]: normalise(str(obj))} if prefix else {}


def field_counts(pred: object, ref: object) -> tuple[int, int, int]:
    """(correct fields, predicted fields, reference fields) for JSON extraction; nested keys are dotted."""
    p = _flatten(pred) if isinstance(pred, dict) else {}
    r = _flatten(ref) if isinstance(ref, dict) else {}
    p = {k: v for k, v in p.items() if v not in ("", "none", "null")}
    r = {k: v for k, v in r.items() if v not in ("", "none", "null")}
    correct = sum(1 for k, v in p.items() if r.get(k) == v)
    return correct, len(p), len(r)


def field_prf(counts: Sequence[tuple[int, int, int]]) -> tuple[float, float, float]:
    c = sum(x[0] for x in counts)
    np_ = sum(x[1] for x in counts)
    nr = sum(x[2] for x in counts)
    prec = c / np_ if np_ else 0.0
    rec = c / nr if nr else 0.0
    return prec, rec, (2 * prec * rec / (prec + rec) if prec + rec else 0.0)


def _tokens(text: str) -> list[str]:
    return re.sub(r"[^\w\s]", " ", normalise(text)).split()


def rouge_l(pred: str, ref: str) -> float:
    """ROUGE-L F1 (longest common subsequence of normalised words)."""
    a, b = _tokens(pred or ""), _tokens(ref or "")
    if not a or not b:
        return float(a == b)
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0]
        for j, y in enumerate(b):
            cur.append(prev[j] + 1 if x == y else max(prev[j + 1], cur[j]))
        prev = cur
    lcs = prev[-1]
    if lcs == 0:
        return 0.0
    p, r = lcs / len(a), lcs / len(b)
    return 2 * p * r / (p + r)


def embedding_similarity(preds: Sequence[str], refs: Sequence[str]) -> list[float]:
    """Cosine similarity of MiniLM embeddings, per item."""
    from ladder.knowledge.embedder import get_embedder

    emb = get_embedder()
    a = np.asarray(emb.embed([p or "" for p in preds]), dtype=np.float32)
    b = np.asarray(emb.embed(list(refs)), dtype=np.float32)
    return [float(x) for x in np.sum(a * b, axis=1)]


def bootstrap_ci(
    n: int, statistic: Callable[[np.ndarray], float], *, rounds: int = 1000, seed: int = 0, level: float = 0.95
) -> tuple[float, float]:
    """Percentile bootstrap interval of statistic(indices) over n items, resampled with replacement."""
    if n == 0:
        return (0.0, 0.0)
    rng = np.random.default_rng(seed)
    stats = np.array([statistic(rng.integers(0, n, n)) for _ in range(rounds)])
    lo, hi = np.quantile(stats, [(1 - level) / 2, 1 - (1 - level) / 2])
    return float(lo), float(hi)


def mean_ci(values: Sequence[float], **kw) -> tuple[float, float]:
    v = np.asarray(values, dtype=float)
    return bootstrap_ci(len(v), lambda idx: float(v[idx].mean()), **kw)


def paired_bootstrap(
    a: Sequence[float], b: Sequence[float], *, rounds: int = 2000, seed: int = 0, level: float = 0.95
) -> dict:
    """Difference b - a of per-item scores on the same items: mean, interval, and whether it is noise.

    `significant` is True when the interval excludes zero.
    """
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if len(x) != len(y):
        raise ValueError("paired bootstrap needs scores on the same items")
    d = y - x
    lo, hi = bootstrap_ci(len(d), lambda idx: float(d[idx].mean()), rounds=rounds, seed=seed, level=level)
    return {"diff": float(d.mean()) if len(d) else 0.0, "lo": lo, "hi": hi, "significant": lo > 0 or hi < 0}


def percentile(values: Sequence[float], q: float) -> float:
    return float(np.percentile(values, q)) if len(values) else 0.0


# -- calibration: do label probabilities mean what they say? --------------------------------------
def reliability_bins(confidences: Sequence[float], correct: Sequence[float], n_bins: int = 10) -> list[dict]:
    """Equal-width confidence bins: items, mean confidence and accuracy in each (empty bins included).

    A confidence of exactly 1.0 falls in the last bin, as in the usual definition of ECE.
    """
    conf = np.asarray(confidences, dtype=float)
    ok = np.asarray(correct, dtype=float)
    which = np.minimum((conf * n_bins).astype(int), n_bins - 1)
    out = []
    for b in range(n_bins):
        sel = which == b
        n = int(sel.sum())
        out.append(
            {
                "lo": b / n_bins,
                "hi": (b + 1) / n_bins,
                "n": n,
                "confidence": float(conf[sel].mean()) if n else None,
                "accuracy": float(ok[sel].mean()) if n else None,
            }
        )
    return out


def expected_calibration_error(confidences: Sequence[float], correct: Sequence[float], n_bins: int = 10) -> float:
    """Sum over bins of (share of items) x |accuracy - mean confidence|; 0 is perfectly calibrated."""
    total = len(confidences)
    if not total:
        return 0.0
    return float(
        sum(
            b["n"] / total * abs(b["accuracy"] - b["confidence"])
            for b in reliability_bins(confidences, correct, n_bins)
            if b["n"]
        )
    )


COVERAGE_THRESHOLDS = tuple(round(0.05 * i, 2) for i in range(20))  # 0.0 (answer everything) to 0.95


def coverage_curve(
    confidences: Sequence[float], correct: Sequence[float], thresholds: Sequence[float] = COVERAGE_THRESHOLDS
) -> list[dict]:
    """Answer only items at or above each confidence threshold (the rest go to a person).

    coverage: the share answered; accuracy: on the answered ones (None when none is answered).
    """
    conf = np.asarray(confidences, dtype=float)
    ok = np.asarray(correct, dtype=float)
    out = []
    for t in thresholds:
        keep = conf >= t
        n = int(keep.sum())
        out.append(
            {
                "threshold": float(t),
                "coverage": n / len(conf) if len(conf) else 0.0,
                "accuracy": float(ok[keep].mean()) if n else None,
                "answered": n,
            }
        )
    return out


def calibration(label_probs: Sequence[dict[str, float] | None], refs: Sequence[str], n_bins: int = 10) -> dict | None:
    """ECE, reliability bins and the coverage curve of the items that carry label probabilities.

    Each item is judged by its most probable label (the probabilities' own answer) against the
    reference; None when no item has probabilities (e.g. a remote model).
    """
    conf, ok = [], []
    for probs, ref in zip(label_probs, refs, strict=True):
        if probs:
            top = max(probs, key=probs.get)
            conf.append(probs[top])
            ok.append(exact_match(top, ref))
    if not conf:
        return None
    return {
        "n": len(conf),
        "ece": expected_calibration_error(conf, ok, n_bins),
        "bins": reliability_bins(conf, ok, n_bins),
        "coverage": coverage_curve(conf, ok),
    }
