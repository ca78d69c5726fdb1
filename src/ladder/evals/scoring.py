"""Which metrics a pipeline gets, per-item scores, and run-level values with a bootstrap interval."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ladder.errors import InvalidInput
from ladder.evals import metrics as M

ALL_METRICS = (
    "accuracy",
    "macro_f1",
    "exact_match",
    "contains",
    "format",
    "field_precision",
    "field_recall",
    "field_f1",
    "rouge_l",
    "embed_sim",
    "recall_at_k",
    "citation_validity",
    "judge",
)


def default_metrics(parser_kind: str, *, rag: bool, has_sources: bool, judge: bool) -> list[str]:
    base = {
        "label": ["accuracy", "macro_f1", "format"],
        "json": ["field_f1", "field_precision", "field_recall", "exact_match", "format"],
        "regex": ["exact_match", "format"],
        "text": ["rouge_l", "exact_match"],
    }[parser_kind]
    if rag:
        base += ["citation_validity"] + (["recall_at_k"] if has_sources else [])
    if judge:
        base = ["judge"] + base
    return base


def check_metrics(names: list[str]) -> None:
    bad = [m for m in names if m not in ALL_METRICS]
    if bad:
        raise InvalidInput(f"unknown metric(s) {', '.join(bad)}; choose from {', '.join(ALL_METRICS)}", param="metric")


def _source_match(hit: dict, sources: list[str]) -> bool:
    wanted = {s.lower() for s in sources}
    vals = [
        str(v).lower()
        for k, v in hit.items()
        if k in ("source", "filename", "doc_id", "document", "title", "name", "doc_name", "path")
    ]
    return any(v in wanted or any(v.endswith("/" + w) or w.endswith("/" + v) for w in wanted) for v in vals)


def per_item_scores(name: str, rows: list[dict]) -> list[float] | None:
    """Per-item score for metrics that have one (row: parsed, output, reference, valid, ...)."""
    if name in ("accuracy", "exact_match"):
        return [M.exact_match(r["parsed"] if r["parsed"] is not None else None, r["reference"]) for r in rows]
    if name == "contains":
        return [M.contains(r["output"], r["reference"]) for r in rows]
    if name == "format":
        return [float(r["valid"]) for r in rows]
    if name == "field_f1":
        return [M.field_prf([M.field_counts(r["parsed"], r["ref_json"])])[2] for r in rows]
    if name == "rouge_l":
        return [M.rouge_l(r["output"], r["reference"]) for r in rows]
    if name == "embed_sim":
        return M.embedding_similarity([r["output"] for r in rows], [r["reference"] for r in rows])
    if name == "recall_at_k":
        return [float(any(_source_match(h, r["sources"]) for h in r["hits"])) for r in rows if r["sources"]]
    if name == "citation_validity":
        out = []
        for r in rows:
            total = len(r["citations"]) + r["dropped"]
            out.append(len(r["citations"]) / total if total else 1.0)
        return out
    if name == "judge":  # a grade the judge did not give is missing, not low
        return [r["judge"] for r in rows if r.get("judge") is not None]
    return None


def aggregate_fn(name: str, rows: list[dict], labels: list[str] | None) -> Callable[[np.ndarray], float]:
    """statistic(indices) for the run-level value, so any metric gets a bootstrap interval."""
    if name == "macro_f1":
        preds = [r["parsed"] for r in rows]
        refs = [r["reference"] for r in rows]
        return lambda idx: M.macro_f1([preds[i] for i in idx], [refs[i] for i in idx], labels)
    if name in ("field_precision", "field_recall"):
        counts = [M.field_counts(r["parsed"], r["ref_json"]) for r in rows]
        k = 0 if name == "field_precision" else 1
        return lambda idx: M.field_prf([counts[i] for i in idx])[k]
    if name == "field_f1":
        counts = [M.field_counts(r["parsed"], r["ref_json"]) for r in rows]
        return lambda idx: M.field_prf([counts[i] for i in idx])[2]
    if name == "judge":  # the mean of the grades given, over whichever rows a resample draws
        grades = np.asarray([np.nan if r.get("judge") is None else r["judge"] for r in rows], dtype=float)
        return lambda idx: float(np.nanmean(grades[idx])) if np.isfinite(grades[idx]).any() else 0.0
    scores = np.asarray(per_item_scores(name, rows) or [0.0], dtype=float)
    return lambda idx: float(scores[idx[idx < len(scores)]].mean()) if len(scores) else 0.0


def score_run(names: list[str], rows: list[dict], labels: list[str] | None) -> dict[str, float]:
    out = {}
    for n in names:
        if n == "recall_at_k" and not any(r["sources"] for r in rows):
            continue
        size = len(per_item_scores(n, rows) or []) if n == "recall_at_k" else len(rows)
        out[n] = aggregate_fn(n, rows, labels)(np.arange(size))
    return out


def headline_ci(name: str, rows: list[dict], labels: list[str] | None, rounds: int = 1000) -> tuple[float, float]:
    return M.bootstrap_ci(len(rows), aggregate_fn(name, rows, labels), rounds=rounds)


ITEM_METRIC = {"macro_f1": "accuracy", "field_precision": "field_f1", "field_recall": "field_f1"}
PASS_THRESHOLD = {"rouge_l": 0.5, "embed_sim": 0.8, "judge": 0.75}


def passes(name: str, rows: list[dict]) -> list[bool]:
    """Per-item pass/fail on the headline metric (or its per-item form, e.g. accuracy for macro-F1)."""
    item = ITEM_METRIC.get(name, name)
    if item == "judge":  # an item without a grade has not passed
        return [r.get("judge") is not None and r["judge"] >= PASS_THRESHOLD["judge"] - 1e-9 for r in rows]
    if item == "recall_at_k":
        item = "accuracy" if rows and rows[0].get("labels") else "rouge_l"
    scores = per_item_scores(item, rows)
    if scores is None or len(scores) != len(rows):
        return [bool(r["valid"]) for r in rows]
    t = PASS_THRESHOLD.get(item, 1.0)
    return [s >= t - 1e-9 for s in scores]
