"""The UI's pages and static files: served, self-contained, locked down by headers, out of the API schema."""

from __future__ import annotations

import re

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from ladder.server.ui import PAGES, STATIC_PREFIX, mount_ui


@pytest.fixture
def client() -> TestClient:
    app = FastAPI()

    @app.get("/api/ping")
    def ping() -> dict:
        return {"ok": True}

    mount_ui(app)
    return TestClient(app)


@pytest.mark.parametrize("path", [p for p, *_ in PAGES] + ["/login"])
def test_every_page_renders_with_nav_and_strict_headers(client, path):
    r = client.get(path)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    csp = r.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "object-src 'none'" in csp
    assert r.headers["x-content-type-options"] == "nosniff"
    html = r.text
    assert f'src="{STATIC_PREFIX}/common.js"' in html
    for href, *_ in PAGES:
        assert f'href="{href}"' in html
    # everything is local: no CDN, no inline script the CSP would have to allow
    assert not re.search(r'(src|href)="(https?:)?//', html)
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html)


def test_static_assets_are_served_and_reference_only_local_resources(client):
    for path, _template, _title, script in PAGES:
        r = client.get(f"{STATIC_PREFIX}/{script}")
        assert r.status_code == 200, path
        assert "javascript" in r.headers["content-type"]
    for name in ("common.js", "login.js", "ui.css", "favicon.svg"):
        r = client.get(f"{STATIC_PREFIX}/{name}")
        assert r.status_code == 200
        text = r.text.replace('xmlns="http://www.w3.org/2000/svg"', "")
        assert "http://" not in text and "https://" not in text


def test_scripts_never_write_markup_from_data():
    # Escaping is structural: no script in the UI uses innerHTML/outerHTML/insertAdjacentHTML/document.write.
    from ladder.server.ui import HERE

    for js in (HERE / "static").glob("*.js"):
        text = js.read_text()
        for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
            assert sink not in text, f"{js.name} uses {sink}"


def test_ui_routes_stay_out_of_the_openapi_schema_and_api_routes_still_work(client):
    paths = client.get("/openapi.json").json()["paths"]
    assert "/api/ping" in paths
    assert not any(p in paths for p, *_ in PAGES)
    assert client.get("/api/ping").json() == {"ok": True}


def test_login_next_parameter_is_not_reflected_into_the_page(client):
    r = client.get('/login?next="><script>alert(1)</script>')
    assert r.status_code == 200
    assert "<script>alert(1)</script>" not in r.text


def test_mounted_on_the_real_app():
    from ladder.server.app import create_app

    c = TestClient(create_app())
    r = c.get("/")
    assert r.status_code == 200 and "ladder" in r.text
    assert c.get(f"{STATIC_PREFIX}/chat.js").status_code == 200
    # the API keeps answering in its own shape next to the pages
    assert c.get("/api/health").json()["status"] == "ok"
