"""A real uvicorn server on a free loopback port, in a thread, with keys for two projects."""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass

import pytest


@dataclass
class Running:
    url: str
    admin_key: str  # admin key of project "default"
    key_b: str  # plain key of project "other"
    app: object

    @property
    def v1(self) -> str:
        return self.url + "/v1"

    def client(self, key: str | None = None, **kw):
        from openai import OpenAI

        return OpenAI(base_url=self.v1, api_key=key or self.admin_key, max_retries=0, timeout=60, **kw)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(config=None):
    import uvicorn

    from ladder.server.app import create_app

    app = create_app(config)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", timeout_graceful_shutdown=2)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 20
    while not server.started:
        if time.time() > deadline or not thread.is_alive():
            raise RuntimeError("server did not start")
        time.sleep(0.02)
    return server, thread, app, f"http://127.0.0.1:{port}"


@pytest.fixture
def make_server(ladder_home):
    """Start servers with a given ServerConfig; all stopped at teardown."""
    from ladder.server import keys

    started = []

    def make(config=None) -> Running:
        server, thread, app, url = start_server(config)
        started.append((server, thread))
        if not keys.any_keys():
            make.admin = keys.create_key("default", admin=True)[1]
            make.key_b = keys.create_key("other")[1]
        return Running(url, make.admin, make.key_b, app)

    yield make
    for server, thread in started:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture
def srv(make_server) -> Running:
    return make_server()
