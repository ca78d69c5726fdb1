"""Native /api/bots: chatbots (pipelines) - create, new versions, list, get, chat with citations."""

from __future__ import annotations

from dataclasses import MISSING, fields
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from ladder.errors import InvalidInput
from ladder.models.registry import BACKENDS
from ladder.models.text_stops import MAX_STOP_CHARS, MAX_STOPS
from ladder.pipelines.config import (
    MAX_FEW_SHOT_K,
    MAX_RETRIEVAL_K,
    MAX_TOKENS_CEILING,
    SHOT_MODES,
    PipelineConfig,
)
from ladder.pipelines.parsers import KINDS
from ladder.pipelines.patterns import MAX_PATTERN_CHARS
from ladder.pipelines.service import NAME_PATTERN
from ladder.server.deps import Principal, in_thread, principal, state
from ladder.server.schemas import MAX_VERSION, SEED_BOUND, StrictBody, json_int

router = APIRouter(tags=["bots"])
_DEFAULTS = {f.name: f.default for f in fields(PipelineConfig) if f.default is not MISSING}
StopSequence = Annotated[str, Field(min_length=1, max_length=MAX_STOP_CHARS)]


# The API's view of PipelineConfig, built from the same constants its own checks use, so the
# OpenAPI schema states what a bot's settings may be; rules across fields (a label parser needs
# labels) stay PipelineConfig's and answer 400.
class _Strict(StrictBody):
    model_config = ConfigDict(extra="forbid", strict=True, populate_by_name=True)


class FewShot(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)

    input: str
    output: str


class ParserSettings(_Strict):
    kind: Literal[KINDS] = "text"
    labels: list[str] = Field(default_factory=list, description="the label set of a label parser")
    schema_: dict | None = Field(None, alias="schema", description="the JSON Schema of a json parser")
    pattern: str | None = Field(None, min_length=1, max_length=MAX_PATTERN_CHARS, description="a regex parser's")


class _BotSettings(_Strict):
    system_prompt: str = _DEFAULTS["system_prompt"]
    output_instruction: str = _DEFAULTS["output_instruction"]
    input_template: str = Field(_DEFAULTS["input_template"], description="frames each input; contains {input}")
    few_shot: list[FewShot] = Field(default_factory=list)
    few_shot_mode: Literal[SHOT_MODES] = _DEFAULTS["few_shot_mode"]
    few_shot_k: json_int(ge=0, le=MAX_FEW_SHOT_K) = Field(_DEFAULTS["few_shot_k"])
    kbs: list[str] = Field(default_factory=list)
    retrieval_k: json_int(ge=1, le=MAX_RETRIEVAL_K) = Field(_DEFAULTS["retrieval_k"])
    retrieval_threshold: float | None = Field(_DEFAULTS["retrieval_threshold"], ge=-1, le=1)
    max_tokens: json_int(ge=1, le=MAX_TOKENS_CEILING) = Field(
        _DEFAULTS["max_tokens"], description="also at most this server's max_tokens cap"
    )
    temperature: float = Field(_DEFAULTS["temperature"], ge=0, le=2)
    top_p: float = Field(_DEFAULTS["top_p"], gt=0, le=1)
    seed: json_int(ge=-SEED_BOUND, le=SEED_BOUND) | None = Field(_DEFAULTS["seed"])
    stop: StopSequence | Annotated[list[StopSequence], Field(max_length=MAX_STOPS)] = Field(
        default_factory=list, description="one stop sequence, or a list of them"
    )
    parser: ParserSettings = Field(default_factory=ParserSettings)
    backend: Literal[BACKENDS] | None = Field(_DEFAULTS["backend"], description="unset: the model's own")
    constrained: bool | None = Field(
        _DEFAULTS["constrained"], description="decode under the parser's format; unset: yes for label, json, regex"
    )
    abstain_below: float | None = Field(
        _DEFAULTS["abstain_below"], gt=0, lt=1, description="a label answer less probable than this is abstain_label"
    )
    abstain_label: str = Field(_DEFAULTS["abstain_label"], min_length=1, max_length=200)


class BotSettings(_BotSettings):
    model: str = Field(..., min_length=1, max_length=512)


class BotChanges(_BotSettings):
    """Only the settings sent change; the rest are the latest version's."""

    model: str = Field(None, min_length=1, max_length=512)


def _sent(settings: _BotSettings) -> dict:
    return settings.model_dump(exclude_unset=True, by_alias=True)


class BotCreate(StrictBody):
    name: str = Field(..., min_length=1, max_length=64, pattern=NAME_PATTERN)
    config: BotSettings


class BotChat(StrictBody):
    messages: list[dict] | str = Field(..., description="a question, or OpenAI-style messages")
    version: json_int(ge=1, le=MAX_VERSION) | None = Field(None)


def _svc():
    from ladder.pipelines import service

    return service


def _within_cap(settings: dict, cap: int) -> dict:
    """A bot answers through this server, so its max_tokens is held to the server's cap like a request's."""
    max_tokens = settings.get("max_tokens")
    if isinstance(max_tokens, int) and max_tokens > cap:
        raise InvalidInput(
            f"max_tokens {max_tokens} is above this server's cap of {cap}",
            param="max_tokens",
            code="max_tokens_too_large",
        )
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
    from ladder.models.registry import get_model

    await in_thread(get_model, body.config.model, who.project_id)  # an unknown model is a 404 first
    config = _within_cap(_sent(body.config), state(request).config.max_tokens_cap)
    return _shown(await in_thread(_checked, _svc().create_bot, body.name, config, project_id=who.project_id))


@router.get("/api/bots")
async def list_bots(who: Principal = Depends(principal)) -> dict:
    return {"object": "list", "data": [_shown(p) for p in await in_thread(_svc().list_bots, project_id=who.project_id)]}


@router.get("/api/bots/{name}")
async def get_bot(
    name: str, version: int | None = Query(None, ge=1, le=MAX_VERSION), who: Principal = Depends(principal)
) -> dict:
    return _shown(await in_thread(_svc().get_bot, name, version, project_id=who.project_id))


@router.post("/api/bots/{name}/versions")
async def new_version(name: str, body: BotChanges, request: Request, who: Principal = Depends(principal)) -> dict:
    """Apply changes to the latest version and store them as the next version."""
    changes = _within_cap(_sent(body), state(request).config.max_tokens_cap)
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
        # label bots: each label's probability (None where the model cannot score them, e.g. a remote one)
        "label_probs": result.label_probs,
        "confidence": result.confidence,
        "abstained": result.abstained,
        "usage": {"prompt_tokens": result.usage.prompt_tokens, "completion_tokens": result.usage.completion_tokens},
        "latency_ms": result.latency_ms + result.scoring_ms,
    }


@router.post("/api/bots/{name}/chat")
async def chat(name: str, body: BotChat, who: Principal = Depends(principal)) -> dict:
    """One answer with its citations (stream with POST /v1/chat/completions and model `bot:<name>`)."""
    return await in_thread(_chat, name, body, who.project_id)
