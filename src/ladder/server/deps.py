"""Request dependencies: who is calling (API key → project), rate limits, and shared server state."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from fastapi import Depends, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from ladder.server import keys
from ladder.server.config import ServerConfig
from ladder.server.errors import ApiError
from ladder.server.limits import Counter, RateLimiter
from ladder.store.db import DEFAULT_PROJECT

bearer = HTTPBearer(auto_error=False, description="an API key from `ladder keys create`")


@dataclass
class Principal:
    """The caller: the project every object it touches is scoped to."""

    project_id: str
    key_id: str | None
    admin: bool

    @property
    def limit_key(self) -> str:
        return self.key_id or "anonymous"


@dataclass
class ServerState:
    config: ServerConfig
    limiter: RateLimiter
    counter: Counter


def state(request: Request) -> ServerState:
    return request.app.state.ladder


def _authenticate(secret: str | None, project_header: str | None, require_keys: bool) -> Principal:
    if not secret:
        if not require_keys and not keys.any_keys():
            return Principal(DEFAULT_PROJECT, None, True)
        raise ApiError(
            401,
            "missing API key: send `Authorization: Bearer <key>` (create one with `ladder keys create`)",
            code="missing_api_key",
        )
    key = keys.authenticate(secret)
    if key is None:
        raise ApiError(401, "invalid or revoked API key", code="invalid_api_key")
    project_id = key.project_id
    if project_header and project_header not in (key.project_id, key.project_name):
        if not key.admin:
            raise ApiError(
                403,
                "this key belongs to another project; only admin keys may pick a project",
                code="project_not_allowed",
                param="OpenAI-Project",
            )
        project_id = keys.project_by_name(project_header)
    return Principal(project_id, key.id, key.admin)


async def principal(
    request: Request, response: Response, creds: HTTPAuthorizationCredentials | None = Depends(bearer)
) -> Principal:
    """Authenticate the caller and take one token from its rate-limit bucket."""
    st = state(request)
    secret = creds.credentials if creds else None
    project_header = request.headers.get("openai-project") or request.headers.get("x-ladder-project")
    who = await run_in_threadpool(_authenticate, secret, project_header, st.config.require_keys)
    for name, value in st.limiter.check(who.limit_key).items():
        response.headers[name] = value
    request.state.principal = who
    return who


def require_admin(who: Principal = Depends(principal)) -> Principal:
    if not who.admin:
        raise ApiError(403, "this endpoint needs an admin key", code="admin_required")
    return who


async def in_thread(fn, *args, **kwargs):
    """Run blocking work (model calls, SQLite, parsing) off the event loop."""
    return await run_in_threadpool(fn, *args, **kwargs)


def now() -> int:
    return int(time.time())


async def sleep(seconds: float) -> None:
    await asyncio.sleep(seconds)
