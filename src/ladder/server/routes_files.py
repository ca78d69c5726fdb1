"""OpenAI-compatible /v1/files: upload, list, get, content, delete - scoped to the caller's project."""

from __future__ import annotations

import json

from fastapi import APIRouter, Depends, File, Form, Query, UploadFile
from fastapi.responses import Response

from ladder.errors import InvalidInput
from ladder.server.deps import Principal, in_thread, principal
from ladder.store import files

router = APIRouter(tags=["files"])
MAX_PROBLEMS = 5


def check_jsonl(data: bytes, filename: str) -> None:
    """A fine-tune file must be UTF-8 JSONL of chat (`messages`) or prompt/completion examples."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise InvalidInput(
            f"{filename}: not UTF-8 text (byte {e.start}); a fine-tune file is JSONL, one JSON "
            "example per line",
            param="file",
            code="invalid_file_format",
        ) from e
    problems, n = [], 0
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        n += 1
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            problems.append(f"line {lineno}: not JSON ({e.msg} at column {e.colno})")
        else:
            if not isinstance(obj, dict):
                problems.append(f"line {lineno}: expected a JSON object")
            elif "messages" in obj:
                if not isinstance(obj["messages"], list) or not obj["messages"]:
                    problems.append(f"line {lineno}: messages must be a non-empty list")
            elif not ("prompt" in obj and "completion" in obj):
                problems.append(f"line {lineno}: needs a messages list, or prompt and completion")
        if len(problems) >= MAX_PROBLEMS:
            break
    if not n and not problems:
        problems.append("the file holds no examples")
    if problems:
        raise InvalidInput(
            f"{filename}: " + "; ".join(problems) + "; fix these lines and upload again",
            param="file",
            code="invalid_file_format",
        )


def _create(data: bytes, filename: str, purpose: str, project_id: str) -> dict:
    if purpose not in files.PURPOSES:
        raise InvalidInput(
            f"purpose {purpose[:64]!r} is not one of {', '.join(files.PURPOSES)}", param="purpose"
        )
    name = files.display_name(filename or "")
    if not data:
        raise InvalidInput(f"{name}: the file is empty", param="file")
    if purpose == "fine-tune":
        check_jsonl(data, name)
    return files.create(data, name, purpose, project_id).as_openai()


@router.post("/v1/files")
async def upload_file(
    file: UploadFile = File(...), purpose: str = Form(..., max_length=64), who: Principal = Depends(principal)
) -> dict:
    data = await file.read()
    return await in_thread(_create, data, file.filename or "", purpose, who.project_id)


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
