"""Stored eval runs: summary and items in SQLite, so runs can be listed and compared later."""

from __future__ import annotations

import json
import time

from ladder.errors import NotFound
from ladder.store.db import DEFAULT_PROJECT, get_db

ITEM_FIELDS = ("output", "parsed", "valid", "passed", "latency_ms", "prompt_tokens", "completion_tokens")


def save_run(run, *, project_id: str = DEFAULT_PROJECT) -> None:
    with get_db().tx() as conn:
        conn.execute(
            "INSERT INTO eval_runs(id, project_id, pipeline, fingerprint, test_set, summary,"
            " report_dir, created_at) VALUES (?,?,?,?,?,?,?,?) ON CONFLICT (id) DO UPDATE SET"
            " project_id=excluded.project_id, pipeline=excluded.pipeline, fingerprint=excluded.fingerprint,"
            " test_set=excluded.test_set, summary=excluded.summary, report_dir=excluded.report_dir,"
            " created_at=excluded.created_at",
            (
                run.id,
                project_id,
                run.pipeline,
                run.fingerprint,
                run.test_set,
                json.dumps(run.summary(), default=str),
                run.report_dir,
                time.time(),
            ),
        )
        for r in run.rows:
            item = {"messages": r["messages"], "reference": r["reference"], "sources": r["sources"]}
            extra = {
                "citations": r["citations"],
                "dropped": r["dropped"],
                "cached": r["cached"],
                "error": r["error"],
                "judge": r.get("judge"),
                "truncated": bool(r.get("truncated")),  # cut at max_tokens, not a wrong answer
                # label pipelines: each label's probability, and whether the answer was routed to a person
                "label_probs": r.get("label_probs"),
                "abstained": bool(r.get("abstained")),
                "hits": [{k: v for k, v in h.items() if k != "text"} for h in r["hits"] if isinstance(h, dict)],
            }
            conn.execute(
                "INSERT INTO eval_items(run_id, idx, item, output, parsed, valid, passed,"
                " latency_ms, prompt_tokens, completion_tokens, extra) VALUES (?,?,?,?,?,?,?,?,?,?,?)"
                " ON CONFLICT (run_id, idx) DO UPDATE SET item=excluded.item, output=excluded.output,"
                " parsed=excluded.parsed, valid=excluded.valid, passed=excluded.passed,"
                " latency_ms=excluded.latency_ms, prompt_tokens=excluded.prompt_tokens,"
                " completion_tokens=excluded.completion_tokens, extra=excluded.extra",
                (
                    run.id,
                    r["idx"],
                    json.dumps(item),
                    r["output"],
                    json.dumps(r["parsed"], default=str),
                    int(r["valid"]),
                    int(r["passed"]),
                    r["latency_ms"],
                    r["prompt_tokens"],
                    r["completion_tokens"],
                    json.dumps(extra, default=str),
                ),
            )


def set_report_dir(run_id: str, report_dir: str) -> None:
    get_db().execute("UPDATE eval_runs SET report_dir=? WHERE id=?", (report_dir, run_id))


def get_run(run_id: str, *, project_id: str = DEFAULT_PROJECT) -> dict:
    row = get_db().one("SELECT * FROM eval_runs WHERE id=? AND project_id=?", (run_id, project_id))
    if row is None:
        raise NotFound(f"no eval run {run_id!r}; list them with `ladder eval list`", param="run")
    out = json.loads(row["summary"])
    out["report_dir"] = row["report_dir"]
    out["items"] = [dict(r) for r in get_db().query("SELECT * FROM eval_items WHERE run_id=? ORDER BY idx", (run_id,))]
    return out


def list_runs(*, project_id: str = DEFAULT_PROJECT, limit: int = 50) -> list[dict]:
    rows = get_db().query(
        "SELECT id, pipeline, summary, created_at, report_dir FROM eval_runs WHERE project_id=?"
        " ORDER BY created_at DESC LIMIT ?",
        (project_id, limit),
    )
    out = []
    for r in rows:
        s = json.loads(r["summary"])
        out.append(
            {
                "id": r["id"],
                "pipeline": r["pipeline"],
                "created_at": r["created_at"],
                "n": s["n"],
                "headline": s["headline"],
                "value": s["value"],
                "ci": s["ci"],
                "report_dir": r["report_dir"],
            }
        )
    return out
