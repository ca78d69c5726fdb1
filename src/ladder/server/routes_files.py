"""OpenAI-compatible /v1/files: upload, list, get, content, delete - scoped to the caller's project."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends, File, Form, Query, UploadFile
from fastapi.responses import Response

from ladder.server.deps import Principal, in_thread, principal
from ladder.settings import get_settings
from ladder.store import files

router = APIRouter(tags=["files"])


def _create(data: bytes, filename: str, purpose: str, project_id: str) -> dict:
    # A fine-tune file gets the very checks job creation runs (store.files.check_upload), so a file
    # accepted here is refused later only for what the job adds (too few examples, hyperparameters).
    return files.upload(data, filename, purpose, project_id).as_openai()


@router.post("/v1/files")
async def upload_file(
    file: UploadFile = File(...), purpose: Literal[files.PURPOSES] = Form(...), who: Principal = Depends(principal)
) -> dict:
    """Store a file for the caller's project; a fine-tune file is checked line by line first."""
    # The body is already bounded by the server's upload limit and spooled to disk by the
    # multipart parser; the file's own size is checked before it is read into memory.
    name = files.display_name(file.filename or "")
    if file.size is not None:
        files.check_size(file.size, name)
    data = await file.read(get_settings().max_file_bytes + 1)
    return await in_thread(_create, data, name, purpose, who.project_id)


@router.get("/v1/files")
async def list_files(
    purpose: str | None = Query(None, max_length=64),
    limit: int = Query(10000, ge=1, le=10000),
    after: str | None = Query(None, max_length=256),
    who: Principal = Depends(principal),
) -> dict:
    recs = await in_thread(files.list_files, who.project_id, purpose)
    if after:
        ids = [r.id for r in recs]
        recs = recs[ids.index(after) + 1 :] if after in ids else []
    page = recs[:limit]
    return {
        "object": "list",
        "data": [r.as_openai() for r in page],
        "has_more": len(recs) > limit,
        "first_id": page[0].id if page else None,
        "last_id": page[-1].id if page else None,
    }


@router.get("/v1/files/{file_id}")
async def get_file(file_id: str, who: Principal = Depends(principal)) -> dict:
    return (await in_thread(files.get, file_id, who.project_id)).as_openai()


@router.get(
    "/v1/files/{file_id}/content",
    response_class=Response,
    responses={200: {"content": {"application/octet-stream": {}}}},
)
async def file_content(file_id: str, who: Principal = Depends(principal)) -> Response:
    rec = await in_thread(files.get, file_id, who.project_id)
    data = await in_thread(rec.read_bytes)
    return Response(data, media_type="application/octet-stream")


@router.delete("/v1/files/{file_id}")
async def delete_file(file_id: str, who: Principal = Depends(principal)) -> dict:
    await in_thread(files.delete, file_id, who.project_id)
    return {"id": file_id, "object": "file", "deleted": True}
