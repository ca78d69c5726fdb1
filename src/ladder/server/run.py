"""Start the server: bind policy (keys off loopback), the first admin key, uvicorn."""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from ladder.errors import InvalidInput
from ladder.server import keys


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def prepare(host: str) -> str | None:
    """Check the bind policy and create the first admin key on an empty data dir; returns its secret."""
    from ladder.server.config import ServerConfig

    config = ServerConfig()
    if not config.require_keys and not is_loopback(host):
        raise InvalidInput(
            f"refusing to serve on {host} without API keys: unauthenticated mode is for "
            "loopback only; unset LADDER_SERVER_REQUIRE_KEYS or bind 127.0.0.1",
            param="host",
        )
    return keys.ensure_admin_key()


def serve(host: str = "127.0.0.1", port: int = 8000, *, log_level: str = "info") -> None:
    import uvicorn

    from ladder.server.app import create_app
    from ladder.store.sweep import sweep_at_start

    sweep_at_start()  # what a crash of this or another ladder process left in the data dir
    uvicorn.run(
        create_app(lifespan=tuning_supervised),
        host=host,
        port=port,
        log_level=log_level,
        timeout_graceful_shutdown=5,
    )


@asynccontextmanager
async def tuning_supervised(app) -> AsyncIterator[None]:
    """While the app is served, a supervisor thread keeps a fine-tuning worker alive for queued jobs
    (and resumes the ones a crash or restart left queued); stopped, with its workers, on shutdown."""
    from ladder.queue.config import QueueConfig
    from ladder.tuning.supervisor import Supervisor

    if not QueueConfig().serve_worker:  # LADDER_SERVE_WORKER=0: `ladder worker --kinds tune` trains
        app.state.tuning_supervisor = None
        app.state.tuning_elsewhere = True
        yield
        return
    supervisor = Supervisor().start()
    app.state.tuning_supervisor = supervisor  # routes wake it when they queue a job
    try:
        yield
    finally:
        app.state.tuning_supervisor = None
        await asyncio.to_thread(supervisor.stop)
