"""The response cache: a generation keyed by model weights, final prompt and settings costs nothing twice."""

from __future__ import annotations

import hashlib
import json
import time

from ladder.models.registry import get_model
from ladder.models.types import ChatRequest, ChatResponse, Usage
from ladder.store.db import DEFAULT_PROJECT, get_db


def cache_key(model: str, backend: str | None, req: ChatRequest, project_id: str = DEFAULT_PROJECT) -> str:
    # The weights' location is part of the key: a re-registered name with new weights must miss.
    spec = get_model(model, project_id)
    p = req.params
    payload = {
        "model": model,
        "backend": backend or spec.backend,
        "path": spec.path,
        "adapter": spec.adapter_path,
        "remote": spec.remote_model,
        "messages": [m.as_dict() for m in req.messages],
        "params": [p.max_tokens, p.temperature, p.top_p, p.seed, list(p.stop)],
    }
    if p.constraint is not None:  # absent when free, so answers cached before constraints still hit
        c = p.constraint
        payload["constraint"] = [c.kind, list(c.choices), c.schema_text, c.pattern]
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def get(key: str) -> ChatResponse | None:
    row = get_db().one("SELECT * FROM response_cache WHERE key=?", (key,))
    if row is None:
        return None
    return ChatResponse(
        row["text"],
        row["finish_reason"],
        Usage(row["prompt_tokens"], row["completion_tokens"]),
        row["latency_ms"],
        row["model"],
    )


def put(key: str, resp: ChatResponse) -> None:
    get_db().execute(
        "INSERT INTO response_cache(key, model, text, finish_reason, prompt_tokens,"
        " completion_tokens, latency_ms, created_at) VALUES (?,?,?,?,?,?,?,?) ON CONFLICT (key) DO UPDATE SET"
        " model=excluded.model, text=excluded.text, finish_reason=excluded.finish_reason,"
        " prompt_tokens=excluded.prompt_tokens, completion_tokens=excluded.completion_tokens,"
        " latency_ms=excluded.latency_ms, created_at=excluded.created_at",
        (
            key,
            resp.model,
            resp.text,
            resp.finish_reason,
            resp.usage.prompt_tokens,
            resp.usage.completion_tokens,
            resp.latency_ms,
            time.time(),
        ),
    )


def sampling_is_deterministic(req: ChatRequest) -> bool:
    """Only greedy or seeded generations may be served from the cache."""
    return req.params.temperature == 0 or req.params.seed is not None
