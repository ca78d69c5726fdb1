"""Stored climbs: the summary (rungs, recommendation, forgetting) and where the report is."""

from __future__ import annotations

import json

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
