"""The FastAPI app: OpenAI-compatible /v1, the native /api, errors in OpenAI's shape, limits, the web UI."""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager

from fastapi import APIRouter, Depends, FastAPI, Request

from ladder.server import errors, schemas
from ladder.server.config import ServerConfig
from ladder.server.deps import Principal, ServerState, principal, state
from ladder.server.limits import BodyLimitMiddleware, Counter, RateLimiter

log = logging.getLogger("ladder.server")
health_router = APIRouter(tags=["health"])


@health_router.get("/api/health")
async def health(request: Request) -> dict:
    """Liveness and the number of model calls in flight (no key needed)."""
    return {"status": "ok", "in_flight": state(request).counter.in_flight}


@health_router.get("/api/whoami")
async def whoami(who: Principal = Depends(principal)) -> dict:
    return {"project_id": who.project_id, "key_id": who.key_id, "admin": who.admin}


def _include_optional(app: FastAPI, module: str) -> None:
    """Routers whose part may not be installed yet are skipped with a log line, not a crash."""
    import importlib

    try:
        mod = importlib.import_module(module)
    except ImportError as e:
        log.warning("%s not mounted: %s", module, e)
        return
    app.include_router(mod.router)


def _with_queue_worker(inner):
    """The app's lifespan: the embedded eval/climb queue worker around the caller's own lifespan (if any)."""
    from ladder.queue.embedded import embedded_worker

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        async with embedded_worker(app):
            if inner is None:
                yield
            else:
                async with inner(app):
                    yield

    return lifespan


def create_app(config: ServerConfig | None = None, *, lifespan=None) -> FastAPI:
    """The app; `lifespan` (an async context manager factory) runs what lives as long as it is served.

    Served, the app also runs a queue worker thread for eval and climb tasks (LADDER_SERVE_WORKER=0: not).
    """
    config = config or ServerConfig()
    app = FastAPI(
        lifespan=_with_queue_worker(lifespan),
        title="ladder",
        version="0.1.0",
        responses=errors.ERROR_RESPONSES,
        description="OpenAI-compatible API (chat, embeddings, files, fine-tuning) and ladder's "
        "native API (knowledge bases, chatbots, evals, climbs, usage).",
    )
    app.state.ladder = ServerState(config, RateLimiter(config.rate_limit_rpm), Counter())
    errors.install(app)
    schemas.document_token_cap(app, config.max_tokens_cap)
    app.include_router(health_router)
    for module in (
        "ladder.server.routes_chat",
        "ladder.server.routes_files",
        "ladder.server.routes_tuning",
        "ladder.server.routes_kb",
        "ladder.server.routes_bots",
        "ladder.server.routes_runs",
        "ladder.server.routes_admin",
    ):
        _include_optional(app, module)
    try:
        from ladder.server.ui import mount_ui
    except ImportError:
        log.info("web UI not installed (ladder.server.ui); serving the API only")
    else:
        mount_ui(app)
    app.add_middleware(BodyLimitMiddleware, max_body=config.max_body_bytes, max_upload=config.max_upload_bytes)
    return app
