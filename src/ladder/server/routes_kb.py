"""Native /api/kbs: knowledge bases, their documents (upload, list, delete), queued ingests, and search."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends, File, Form, Request, Response, UploadFile
from pydantic import Field

from ladder.knowledge.chunking import MAX_CHUNK_SIZE, MIN_CHUNK_SIZE
from ladder.knowledge.records import KB_NAME_PATTERN, AddResult
from ladder.knowledge.retrieve import MAX_K, MAX_QUERY_CHARS
from ladder.queue import ingests
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
    request: Request,
    response: Response,
    file: UploadFile = File(...),
    policy: Literal["replace", "skip", "keep"] = Form("replace"),
    # Strings, not a bool: an optional bool in a form has no encoding of "unset" that every client sends.
    wait: Literal["auto", "true", "false"] = Form(
        "auto",
        description="true: ingest while the request waits; false: queue it; auto: queue it when the file is"
        " over LADDER_KB_QUEUE_BYTES",
    ),
    who: Principal = Depends(principal),
) -> dict:
    """Parse, chunk, embed and index one document: searchable when this returns (200), or, for a large
    file, queued as an `ingest` task (202 with the task; poll GET /api/kbs/{kb}/ingests/{id})."""
    from ladder.store.files import display_name

    data = await file.read()
    name = display_name(file.filename or "")
    if not ingests.should_queue(len(data), None if wait == "auto" else wait == "true"):
        result = await in_thread(_svc().add_document, kb, name, data, policy=policy, project_id=who.project_id)
        return result.as_dict()
    out = await in_thread(ingests.queue_upload, kb, name, data, policy=policy, project_id=who.project_id)
    if isinstance(out, AddResult):  # nothing to do (same content already there, or skip): as when waiting
        return out.as_dict()
    worker = getattr(request.app.state, "queue_worker", None)
    if worker is not None:  # the server's embedded worker looks now instead of at its next poll
        worker.wake()
    response.status_code = 202
    return ingests.as_dict(out)


def _list_documents(kb: str, project_id: str) -> dict:
    docs = _svc().list_docs(kb, project_id=project_id)
    pending = ingests.list_ingests(kb, project_id, pending=True)
    return {"object": "list", "data": [d.as_dict() for d in docs], "ingests": [ingests.as_dict(t) for t in pending]}


@router.get("/api/kbs/{kb}/documents")
async def list_documents(kb: str, who: Principal = Depends(principal)) -> dict:
    """The KB's documents (`data`) and its queued or running ingests (`ingests`), not searchable yet."""
    return await in_thread(_list_documents, kb, who.project_id)


def _ingest(kb: str, task_id: str, project_id: str) -> dict:
    task = ingests.get_ingest(kb, task_id, project_id)
    return ingests.as_dict(task, ingests.result_docs(task))


@router.get("/api/kbs/{kb}/ingests")
async def list_kb_ingests(kb: str, who: Principal = Depends(principal)) -> dict:
    """The KB's ingest tasks, newest first (the latest 50)."""
    tasks = await in_thread(ingests.list_ingests, kb, who.project_id)
    return {"object": "list", "data": [ingests.as_dict(t) for t in tasks]}


@router.get("/api/kbs/{kb}/ingests/{ingest_id}")
async def get_kb_ingest(kb: str, ingest_id: str, who: Principal = Depends(principal)) -> dict:
    """The task's status and progress (chunks embedded of total); when `succeeded`, the documents it added."""
    return await in_thread(_ingest, kb, ingest_id, who.project_id)


@router.post("/api/kbs/{kb}/ingests/{ingest_id}/cancel")
async def cancel_kb_ingest(kb: str, ingest_id: str, who: Principal = Depends(principal)) -> dict:
    """A queued ingest is cancelled at once; a running one stops at its next batch (409 once it has ended)."""
    return ingests.as_dict(await in_thread(ingests.cancel_ingest, kb, ingest_id, who.project_id))


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
