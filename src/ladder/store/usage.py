"""The usage ledger: every model call, embedded chunk and trained token, priced from settings."""

from __future__ import annotations

import time
from dataclasses import dataclass

from ladder.settings import get_settings
from ladder.store.db import DEFAULT_PROJECT, Database, get_db


@dataclass
class UsageRecord:
    model: str
    kind: str  # chat | embed | train
    prompt_tokens: int = 0
    completion_tokens: int = 0
    embedded_chunks: int = 0
    trained_tokens: int = 0
    latency_ms: float = 0.0
    project_id: str = DEFAULT_PROJECT
    source: str | None = None
    remote: bool = False


def cost_of(rec: UsageRecord) -> float:
    """US dollars for one record, from the settings' price table."""
    p = get_settings().price_for(rec.model, remote=rec.remote)
    return (
        rec.prompt_tokens / 1000 * p.input_per_1k
        + rec.completion_tokens / 1000 * p.output_per_1k
        + rec.embedded_chunks * p.per_embedded_chunk
        + rec.trained_tokens / 1000 * p.trained_per_1k
    )


def record(rec: UsageRecord, db: Database | None = None) -> float:
    """Append one record to the ledger; returns its cost."""
    db = db or get_db()
    cost = cost_of(rec)
    db.execute(
        "INSERT INTO usage(project_id, model, kind, prompt_tokens, completion_tokens, embedded_chunks,"
        " trained_tokens, latency_ms, cost_usd, source, created_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
        (
            rec.project_id,
            rec.model,
            rec.kind,
            rec.prompt_tokens,
            rec.completion_tokens,
            rec.embedded_chunks,
            rec.trained_tokens,
            rec.latency_ms,
            cost,
            rec.source,
            time.time(),
        ),
    )
    return cost


def summary(
    project_id: str = DEFAULT_PROJECT, *, by: str = "model", since: float | None = None, db: Database | None = None
) -> list[dict]:
    """Totals per model, per kind or per day (UTC) for one project."""
    db = db or get_db()
    day = {
        "sqlite": "date(created_at, 'unixepoch')",
        "postgresql": "to_char(to_timestamp(created_at) AT TIME ZONE 'UTC', 'YYYY-MM-DD')",
    }[db.engine]
    group = {"model": "model", "kind": "kind", "day": day}.get(by)
    if group is None:
        raise ValueError("by must be one of: model, kind, day")
    rows = db.query(
        f"SELECT {group} AS key, COUNT(*) AS calls, SUM(prompt_tokens) AS prompt_tokens,"
        " SUM(completion_tokens) AS completion_tokens, SUM(embedded_chunks) AS embedded_chunks,"
        " SUM(trained_tokens) AS trained_tokens, SUM(cost_usd) AS cost_usd"
        f" FROM usage WHERE project_id=? AND created_at>=? GROUP BY {group} ORDER BY key",
        (project_id, since or 0.0),
    )
    return [dict(r) for r in rows]
