"""Native /api/kbs: knowledge bases and their documents (upload, list, delete) and search."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends, File, Form, UploadFile
from pydantic import Field

from ladder.knowledge.chunking import MAX_CHUNK_SIZE, MIN_CHUNK_SIZE
from ladder.knowledge.records import KB_NAME_PATTERN
from ladder.knowledge.retrieve import MAX_K, MAX_QUERY_CHARS
from ladder.server.deps import Principal, in_thread, principal
from ladder.server.schemas import StrictBody, json_int

router = APIRouter(tags=["knowledge"])


# The limits are the knowledge part's own constants, so the spec says what the code enforces.
class KBCreate(StrictBody):
    name: str = Field(..., min_length=1, max_length=64, pattern=KB_NAME_PATTERN)
    chunk_size: json_int(ge=MIN_CHUNK_SIZE, le=MAX_CHUNK_SIZE) | None = Field(None, description="tokens per chunk")
    chunk_overlap: json_int(ge=0, le=MAX_CHUNK_SIZE // 2) | None = Field(
        None, description="tokens shared by neighbours; at most half of chunk_size"
    )


class SearchRequest(StrictBody):
    query: str = Field(..., min_length=1, max_length=MAX_QUERY_CHARS, pattern=r"\S")
    k: json_int(ge=1, le=MAX_K) = Field(5)
    threshold: float | None = Field(None, ge=-1, le=1)


def _svc():
    from ladder.knowledge import service

    return service


@router.post("/api/kbs")
async def create_kb(body: KBCreate, who: Principal = Depends(principal)) -> dict:
    kb = await in_thread(
        _svc().create_kb,
        body.name,
        chunk_size=body.chunk_size,
        chunk_overlap=body.chunk_overlap,
        project_id=who.project_id,
    )
    return kb.as_dict()


@router.get("/api/kbs")
async def list_kbs(who: Principal = Depends(principal)) -> dict:
    kbs = await in_thread(_svc().list_kbs, project_id=who.project_id)
    return {"object": "list", "data": [k.as_dict() for k in kbs]}


@router.get("/api/kbs/{kb}")
async def get_kb(kb: str, who: Principal = Depends(principal)) -> dict:
    return (await in_thread(_svc().get_kb, kb, project_id=who.project_id)).as_dict()


@router.delete("/api/kbs/{kb}")
async def delete_kb(kb: str, who: Principal = Depends(principal)) -> dict:
    await in_thread(_svc().delete_kb, kb, project_id=who.project_id)
    return {"id": kb, "deleted": True}


@router.post("/api/kbs/{kb}/documents")
async def upload_document(
    kb: str,
    file: UploadFile = File(...),
    policy: Literal["replace", "skip", "keep"] = Form("replace"),
    who: Principal = Depends(principal),
) -> dict:
    """Parse, chunk, embed and index one document; searchable when this returns."""
    from ladder.store.files import display_name

    data = await file.read()
    result = await in_thread(
        _svc().add_document, kb, display_name(file.filename or ""), data, policy=policy, project_id=who.project_id
    )
    return result.as_dict()


@router.get("/api/kbs/{kb}/documents")
async def list_documents(kb: str, who: Principal = Depends(principal)) -> dict:
    docs = await in_thread(_svc().list_docs, kb, project_id=who.project_id)
    return {"object": "list", "data": [d.as_dict() for d in docs]}


@router.delete("/api/kbs/{kb}/documents/{doc}")
async def delete_document(kb: str, doc: str, who: Principal = Depends(principal)) -> dict:
    n = await in_thread(_svc().remove_doc, kb, doc, project_id=who.project_id)
    return {"id": doc, "deleted": True, "removed": n}


@router.post("/api/kbs/{kb}/search")
async def search(kb: str, body: SearchRequest, who: Principal = Depends(principal)) -> dict:
    """The k best chunks of this KB (this project's only) for the query."""
    hits = await in_thread(
        _svc().search, [kb], body.query, k=body.k, threshold=body.threshold, project_id=who.project_id
    )
    return {"object": "list", "data": [h.as_dict() for h in hits]}
