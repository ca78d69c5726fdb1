"""Native /api/keys (admin keys only) and /api/usage (the caller's project, with cost)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query
from pydantic import Field

from ladder.server import keys
from ladder.server.deps import Principal, in_thread, principal, require_admin
from ladder.server.schemas import StrictBody

router = APIRouter(tags=["admin"])


class KeyCreate(StrictBody):
    project: str = Field("default", min_length=1, max_length=64, pattern=keys.PROJECT_NAME_PATTERN)
    admin: bool = False
    name: str = Field("", max_length=128)


@router.post("/api/keys")
async def create_key(body: KeyCreate, who: Principal = Depends(require_admin)) -> dict:
    """A new key; the secret is in this response only."""
    rec, secret = await in_thread(keys.create_key, body.project, admin=body.admin, name=body.name)
    return {**rec.as_dict(), "key": secret}


@router.get("/api/keys")
async def list_keys(who: Principal = Depends(require_admin)) -> dict:
    return {"object": "list", "data": [k.as_dict() for k in await in_thread(keys.list_keys)]}


@router.delete("/api/keys/{key_id}")
async def revoke_key(key_id: str, who: Principal = Depends(require_admin)) -> dict:
    return (await in_thread(keys.revoke_key, key_id)).as_dict()


@router.get("/api/usage")
async def usage(
    by: str = Query("model", pattern="^(model|kind|day)$"),
    since: float | None = Query(None, ge=0),
    who: Principal = Depends(principal),
) -> dict:
    """Totals for the caller's project per model, kind or day: calls, tokens, chunks, cost in USD."""
    from ladder.store import usage as ledger

    rows = await in_thread(ledger.summary, who.project_id, by=by, since=since)
    total = sum(r["cost_usd"] or 0.0 for r in rows)
    return {"object": "list", "project_id": who.project_id, "by": by, "data": rows, "total_cost_usd": total}
