"""Stored climbs: the summary (rungs, recommendation, forgetting) and where the report is."""

from __future__ import annotations

import json
import time

from ladder.errors import NotFound
from ladder.store.db import DEFAULT_PROJECT, get_db


def _out(row) -> dict:
    return {
        "id": row["id"],
        "created_at": row["created_at"],
        "report_dir": row["report_dir"],
        **json.loads(row["config"]),
        **json.loads(row["summary"]),
    }


def get_climb(climb_id: str, *, project_id: str = DEFAULT_PROJECT) -> dict:
    row = get_db().one("SELECT * FROM climbs WHERE id=? AND project_id=?", (climb_id, project_id))
    if row is None:
        raise NotFound(f"no climb {climb_id!r}", param="climb")
    return _out(row)


def list_climbs(*, project_id: str = DEFAULT_PROJECT, limit: int = 50) -> list[dict]:
    rows = get_db().query(
        "SELECT * FROM climbs WHERE project_id=? ORDER BY created_at DESC LIMIT ?", (project_id, limit)
    )
    return [_out(r) for r in rows]


def insert_climb(climb_id: str, project_id: str, target, summary: dict, report_dir: str | None) -> None:
    """The climb's row (joins the caller's transaction, which stores its eval runs with it)."""
    with get_db().tx() as conn:
        conn.execute(
            "INSERT INTO climbs(id, project_id, config, summary, report_dir, created_at) VALUES (?,?,?,?,?,?)",
            (
                climb_id,
                project_id,
                json.dumps({"target": target}),
                json.dumps(summary, default=str),
                report_dir,
                time.time(),
            ),
        )


def climb_summary(climb_id: str, project_id: str) -> dict:
    """What the climb's task shows: its summary as stored and where its report is."""
    row = get_db().one("SELECT summary, report_dir FROM climbs WHERE id=? AND project_id=?", (climb_id, project_id))
    if row is None:
        raise NotFound(f"no climb {climb_id!r}", param="climb_id")
    return {"summary": json.loads(row["summary"]), "report_dir": row["report_dir"]}
