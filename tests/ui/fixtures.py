"""Browser-test fixtures: a real `ladder` server (uvicorn subprocess) and Debian's Chromium via Playwright.

A plugin loaded by tests/conftest.py rather than a conftest of tests/ui, so that browser tests elsewhere
(tests/reliability) share the one session browser: a second `sync_playwright()` in the same session fails.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.ui.scripted import build_scripted_model

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"
CITED_ANSWER = "Refunds take five days [1]."
XSS_ANSWER = "<img src onerror=alert(1)>"


@dataclass
class Server:
    url: str
    key: str
    home: Path
    log: Path

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {self.key}"}, timeout=60)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_serving(url: str, proc: subprocess.Popen, log: Path, timeout: float) -> None:
    """Return once the server answers /api/health; kill it and raise with its log's tail if it cannot."""
    deadline = time.time() + timeout
    while True:
        try:
            if httpx.get(url + "/api/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.time() > deadline:
            proc.kill()
            raise RuntimeError(f"the server did not start:\n{log.read_text()[-3000:]}")
        time.sleep(0.2)


class _Home:
    """Point this process's settings and database at another LADDER_HOME for a moment."""

    def __init__(self, home: Path):
        self.home, self.old = home, None

    def __enter__(self) -> None:
        from ladder.settings import reset_settings
        from ladder.store.db import reset_dbs

        self.old = os.environ.get("LADDER_HOME")
        os.environ["LADDER_HOME"] = str(self.home)
        reset_settings()
        reset_dbs()

    def __exit__(self, *exc) -> None:
        from ladder.settings import reset_settings
        from ladder.store.db import reset_dbs

        if self.old is None:
            os.environ.pop("LADDER_HOME", None)
        else:
            os.environ["LADDER_HOME"] = self.old
        reset_settings()
        reset_dbs()


@pytest.fixture(scope="session")
def ui_server(tmp_path_factory):
    """A real server on a free loopback port with a fresh data dir and an admin key (no models loaded)."""
    from ladder.server import keys

    root = tmp_path_factory.mktemp("ui-server")
    home = root / "home"
    with _Home(home):
        _, key = keys.create_key("default", admin=True, name="browser tests")
    port = _free_port()
    env = {
        **os.environ,
        "LADDER_HOME": str(home),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "OMP_NUM_THREADS": "2",
    }
    log = root / "server.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "ladder.server.app:create_app",
                "--factory",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--log-level",
                "warning",
            ],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(url, proc, log, timeout=60)
    except RuntimeError as e:
        pytest.fail(str(e))
    try:
        yield Server(url, key, home, log)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@pytest.fixture(scope="session")
def ui_models(ui_server, tiny_model_dir, smol_tokenizer_dir, tmp_path_factory) -> Server:
    """The tiny Llama and two scripted models registered in the running server's data dir."""
    from ladder.models import registry

    models = tmp_path_factory.mktemp("ui-models")
    cite = build_scripted_model(smol_tokenizer_dir, models / "cite", CITED_ANSWER)
    xss = build_scripted_model(smol_tokenizer_dir, models / "xss", XSS_ANSWER)
    with _Home(ui_server.home):  # the server reads its registry from the database on every request
        registry.add_local("tiny-llama", tiny_model_dir)
        registry.add_local("cite-llama", cite)
        registry.add_local("xss-llama", xss)
    return ui_server


@pytest.fixture(scope="session")
def browser():
    if not CHROMIUM.exists():
        pytest.skip("/usr/bin/chromium is absent: run `make browser` (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=str(CHROMIUM),
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        try:
            yield b
        finally:
            b.close()


class Tab:
    """A page plus what a test must assert never happened: dialogs (alert/confirm from injected code)."""

    def __init__(self, page, server: Server):
        self.page, self.server = page, server
        self.dialogs: list[str] = []
        self.console_errors: list[str] = []
        self.accept_confirms = False
        page.on("dialog", self._dialog)
        page.on("console", lambda m: self.console_errors.append(m.text) if m.type == "error" else None)

    def _dialog(self, d) -> None:
        self.dialogs.append(f"{d.type}: {d.message}")
        if d.type == "confirm" and self.accept_confirms:
            d.accept()
        else:
            d.dismiss()

    def goto(self, path: str) -> None:
        self.page.goto(self.server.url + path)

    def login(self) -> None:
        self.goto("/login")
        self.page.fill("#api-key", self.server.key)
        self.page.click("#login-form button[type=submit]")
        self.page.wait_for_url(self.server.url + "/")

    def shot(self, name: str) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


@pytest.fixture
def tab(request, browser, ui_server):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(20_000)
    t = Tab(page, ui_server)
    try:
        yield t
    finally:
        rep = getattr(request.node, "rep_call", None)
        if rep is not None and rep.failed:
            # what the page and the server said, next to the failure
            t.shot("failed-" + request.node.name)
            flash = page.locator("#flash")
            print("page flash:", flash.text_content() if flash.count() else None)
            print("page main:", page.locator("main").text_content()[-2000:] if page.locator("main").count() else "")
            print("console errors:", t.console_errors)
            print("server log:", ui_server.log.read_text()[-4000:])
        context.close()
