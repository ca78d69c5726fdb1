"""A stored eval run read back as the EvalRun its rung made, so a queued climb recommends from its rungs' tasks.

The summary is stored whole (every EvalRun field but the rows); the rows are the stored items with what
the store leaves out of them (the input, the parsed reference, the label set) taken again from the test
set the rung ran on, item by item, so the scores and the report are computed from the same values.
"""

from __future__ import annotations

import json
from dataclasses import fields

from ladder.errors import NotFound
from ladder.evals.runner import EvalRun, _ref_json
from ladder.evals.testset import TestItem
from ladder.store.db import DEFAULT_PROJECT, get_db


def load_run(run_id: str, test: list[TestItem], project_id: str = DEFAULT_PROJECT) -> EvalRun:
    db = get_db()
    row = db.one("SELECT summary FROM eval_runs WHERE id=? AND project_id=?", (run_id, project_id))
    if row is None:
        raise NotFound(f"no eval run {run_id!r} (a rung of this climb stored none)", param="run")
    summary = json.loads(row["summary"])
    known = {f.name for f in fields(EvalRun)} - {"rows"}
    run = EvalRun(**{k: v for k, v in summary.items() if k in known})
    run.ci = tuple(run.ci)
    items = db.query("SELECT * FROM eval_items WHERE run_id=? ORDER BY idx", (run_id,))
    if len(items) != len(test):
        raise NotFound(f"eval run {run_id} holds {len(items)} items, not the test set's {len(test)}", param="run")
    run.rows = [_row(dict(r), t, run.labels) for r, t in zip(items, test, strict=True)]
    return run


def _row(r: dict, t: TestItem, labels: list[str]) -> dict:
    stored = json.loads(r["item"])
    extra = json.loads(r["extra"] or "{}")
    return {
        "idx": r["idx"],
        "input": t.input,
        "messages": stored["messages"],
        "reference": stored["reference"],
        "ref_json": _ref_json(stored["reference"]),
        "sources": stored["sources"],
        "labels": labels,
        "output": r["output"],
        "parsed": json.loads(r["parsed"]) if r["parsed"] is not None else None,
        "valid": bool(r["valid"]),
        "passed": r["passed"],
        "latency_ms": r["latency_ms"],
        "prompt_tokens": r["prompt_tokens"],
        "completion_tokens": r["completion_tokens"],
        **extra,
    }
