"""The embedding budget: chunks one upload may make, and chunks a project may embed in 24 hours.

Embedding is what a KB upload costs (seconds of CPU per hundred chunks), so both bounds count
chunks and are checked after chunking, before any embedding starts. The daily figure comes from
the usage ledger, which records every embedding (uploads and reindexes) with its chunk count;
chunks rather than tokens because each chunk is at most 256 tokens and the ledger counts chunks.
"""

from __future__ import annotations

import time

from ladder.errors import QuotaExceeded, TooLarge
from ladder.settings import get_settings
from ladder.store.db import Database, get_db

WINDOW_S = 24 * 3600


def embedded_recently(project_id: str, db: Database | None = None, now: float | None = None) -> int:
    """Chunks this project embedded in the last 24 hours."""
    since = (now or time.time()) - WINDOW_S
    row = (db or get_db()).one(
        "SELECT COALESCE(SUM(embedded_chunks), 0) AS n FROM usage"
        " WHERE project_id=? AND kind='embed' AND created_at >= ?",
        (project_id, since),
    )
    return int(row["n"])


def _frees_up_at(project_id: str, needed: int, budget: int, db: Database, now: float) -> float | None:
    """When enough of the window's embeddings age out for `needed` more chunks (None: never)."""
    if needed > budget:
        return None
    rows = db.query(
        "SELECT created_at, embedded_chunks FROM usage WHERE project_id=? AND kind='embed' AND created_at >= ?"
        " ORDER BY created_at",
        (project_id, now - WINDOW_S),
    )
    used = sum(r["embedded_chunks"] for r in rows)
    for r in rows:
        used -= r["embedded_chunks"]
        if used + needed <= budget:
            return r["created_at"] + WINDOW_S
    return now


def check_budget(name: str, chunks: int, project_id: str, db: Database | None = None) -> None:
    """TooLarge (413) for an upload over the per-upload limit, QuotaExceeded (429) over the daily budget."""
    settings = get_settings()
    limit = settings.max_chunks_per_document
    if chunks > limit:
        raise TooLarge(
            f"{name}: {chunks:,} chunks is over the limit of {limit:,} chunks per upload "
            "(LADDER_MAX_CHUNKS_PER_DOCUMENT); split the file, or raise the limit; nothing was added",
            code="too_many_chunks",
            param="file",
        )
    db = db or get_db()
    now = time.time()
    budget = settings.embed_chunks_per_day
    used = embedded_recently(project_id, db, now)
    if used + chunks > budget:
        at = _frees_up_at(project_id, chunks, budget, db, now)
        when = (
            f"retry after {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(at))}"
            if at
            else "it is larger than the whole budget"
        )
        raise QuotaExceeded(
            f"{name}: embedding its {chunks:,} chunks would pass this project's budget of {budget:,} "
            f"chunks in 24 hours ({used:,} used; LADDER_EMBED_CHUNKS_PER_DAY); {when}; nothing was added",
            code="embedding_budget_exceeded",
            param="file",
        )


def check_budget_left(name: str, project_id: str, db: Database | None = None) -> None:
    """QuotaExceeded (429) when the project has no embedding budget left at all: what a queued upload,
    whose chunk count is not known until a worker parses it, can be refused for when it is queued."""
    settings = get_settings()
    db = db or get_db()
    now = time.time()
    used = embedded_recently(project_id, db, now)
    if used >= settings.embed_chunks_per_day:
        at = _frees_up_at(project_id, 1, settings.embed_chunks_per_day, db, now)
        when = f"retry after {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(at))}" if at else "raise the budget"
        raise QuotaExceeded(
            f"{name}: this project has used its whole budget of {settings.embed_chunks_per_day:,} embedded chunks"
            f" in 24 hours ({used:,} used; LADDER_EMBED_CHUNKS_PER_DAY); {when}; nothing was queued",
            code="embedding_budget_exceeded",
            param="file",
        )
