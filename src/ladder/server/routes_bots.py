"""Native /api/bots: chatbots (pipelines) - create, new versions, list, get, chat with citations."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from ladder.errors import InvalidInput
from ladder.server.deps import Principal, in_thread, principal, state
from ladder.server.schemas import MAX_VERSION

router = APIRouter(tags=["bots"])


class BotCreate(BaseModel):
    name: str = Field(..., min_length=1, max_length=64)
    config: dict = Field(..., description="pipeline settings: model, system_prompt, few_shot, kbs, ...")


class BotChat(BaseModel):
    messages: list[dict] | str = Field(..., description="a question, or OpenAI-style messages")
    version: int | None = Field(None, ge=1, le=MAX_VERSION)


def _svc():
    from ladder.pipelines import service

    return service


def _within_cap(settings: dict, cap: int) -> dict:
    """A bot answers through this server, so its max_tokens is held to the server's cap like a request's."""
    max_tokens = settings.get("max_tokens")
    if isinstance(max_tokens, int) and max_tokens > cap:
        raise InvalidInput(f"max_tokens {max_tokens} is above this server's cap of {cap}", param="max_tokens",
                           code="max_tokens_too_large")
    return settings


def _checked(fn, *args, **kwargs):
    """Pipeline settings of the wrong shape are the caller's mistake (400), never a 500."""
    try:
        return fn(*args, **kwargs)
    except (TypeError, ValueError, AttributeError, KeyError) as e:
        raise InvalidInput(f"invalid bot settings: {str(e)[:300]}", param="config") from e


def _shown(p) -> dict:
    return {"id": p.id, "object": "bot", "name": p.name, "version": p.version, "config": p.config.as_dict()}


@router.post("/api/bots")
async def create_bot(body: BotCreate, request: Request, who: Principal = Depends(principal)) -> dict:
    config = _within_cap(body.config, state(request).config.max_tokens_cap)
    return _shown(await in_thread(_checked, _svc().create_bot, body.name, config, project_id=who.project_id))


@router.get("/api/bots")
async def list_bots(who: Principal = Depends(principal)) -> dict:
    return {"object": "list", "data": [_shown(p) for p in await in_thread(_svc().list_bots, project_id=who.project_id)]}


@router.get("/api/bots/{name}")
async def get_bot(name: str, version: int | None = Query(None, ge=1, le=MAX_VERSION),
                  who: Principal = Depends(principal)) -> dict:
    return _shown(await in_thread(_svc().get_bot, name, version, project_id=who.project_id))


@router.post("/api/bots/{name}/versions")
async def new_version(name: str, changes: dict, request: Request, who: Principal = Depends(principal)) -> dict:
    """Apply changes to the latest version and store them as the next version."""
    changes = _within_cap(changes, state(request).config.max_tokens_cap)
    return _shown(await in_thread(_checked, _svc().edit_bot, name, changes, project_id=who.project_id))


@router.get("/api/bots/{name}/versions")
async def versions(name: str, who: Principal = Depends(principal)) -> dict:
    rows = await in_thread(_svc().bot_versions, name, project_id=who.project_id)
    return {"object": "list", "data": [_shown(p) for p in rows]}


def _chat(name: str, body: BotChat, project_id: str) -> dict:
    from ladder.pipelines.pipeline import as_plain

    pipe = _svc().get_bot(name, body.version, project_id=project_id)
    result = pipe.run(body.messages, source="api")
    if result.error:
        raise InvalidInput(result.error, param="messages")
    return {
        "object": "bot.answer",
        "bot": pipe.name,
        "version": pipe.version,
        "text": result.text,
        "parsed": result.parsed,
        "valid": result.valid,
        "citations": [as_plain(c) for c in result.citations],
        "usage": {"prompt_tokens": result.usage.prompt_tokens, "completion_tokens": result.usage.completion_tokens},
        "latency_ms": result.latency_ms,
    }


@router.post("/api/bots/{name}/chat")
async def chat(name: str, body: BotChat, who: Principal = Depends(principal)) -> dict:
    """One answer with its citations (stream with POST /v1/chat/completions and model `bot:<name>`)."""
    return await in_thread(_chat, name, body, who.project_id)
