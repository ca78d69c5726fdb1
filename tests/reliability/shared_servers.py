"""Several `ladder serve` processes (and workers) on one PostgreSQL, as a deployment runs them."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.server.conftest import free_port
from tests.ui.fixtures import wait_until_serving


def machine_env(database_url: str, home: Path, blobs: Path, **extra: str) -> dict[str, str]:
    """The environment of one machine: its own data dir, the shared database and blob store."""
    return {
        **os.environ,
        "LADDER_HOME": str(home),
        "LADDER_DATABASE_URL": database_url,
        "LADDER_BLOB_URL": blobs.as_uri(),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "OMP_NUM_THREADS": "1",
        **extra,
    }


@dataclass
class Served:
    url: str
    proc: subprocess.Popen
    log: Path
    key: str = ""
    _clients: list = field(default_factory=list)

    def client(self, timeout: float = 120) -> httpx.Client:
        c = httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {self.key}"}, timeout=timeout)
        self._clients.append(c)
        return c

    def stop(self) -> None:
        for c in self._clients:
            c.close()
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


def serve(env: dict[str, str], log: Path, key: str) -> Served:
    """`ladder serve` on a free loopback port; returns once it answers /api/health."""
    port = free_port()
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "ladder.cli.main", "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    wait_until_serving(url, proc, log, timeout=90)
    return Served(url, proc, log, key)
