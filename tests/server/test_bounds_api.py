"""Integers that meet SQLite, bot settings, method errors and spec limits, over real HTTP."""

from __future__ import annotations

import httpx
import pytest

from ladder.models.packaged import SMOLLM2_NAME

TOO_BIG = 9223372036854775808  # 2**63: sqlite3 raises OverflowError binding it


@pytest.fixture
def api(srv):
    with httpx.Client(base_url=srv.url, headers={"Authorization": f"Bearer {srv.admin_key}"}, timeout=30) as c:
        yield c


def _error(r: httpx.Response, status: int, param: str) -> dict:
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert err["param"] == param and err["message"] and err["type"] == "invalid_request_error"
    return err


def test_integers_beyond_sqlite_are_refused_not_500(api):
    assert api.post("/api/bots", json={"name": "b", "config": {"model": SMOLLM2_NAME}}).status_code == 200
    _error(api.get("/api/bots/b", params={"version": TOO_BIG}), 422, "version")
    _error(api.post("/api/bots/b/chat", json={"messages": "hi", "version": TOO_BIG}), 422, "version")
    _error(api.get(f"/api/bots/b@{TOO_BIG}"), 400, "version")
    assert api.get("/api/bots/b", params={"version": 1}).json()["version"] == 1


def test_bot_settings_are_bounded_at_creation(api):
    def create(**settings) -> httpx.Response:
        return api.post("/api/bots", json={"name": "b", "config": {"model": SMOLLM2_NAME, **settings}})

    for field, value in [
        ("max_tokens", -5),
        ("max_tokens", 2**70),
        ("temperature", 3),
        ("top_p", 0),
        ("backend", "cuda"),
        ("stop", ["x"] * 5),
        ("max_tokens", "8"),
        ("seed", 2**63),
    ]:
        _error(create(**{field: value}), 422, f"config.{field}")
    err = _error(create(max_tokens=5000), 400, "max_tokens")  # within the ceiling, above this server's cap
    assert err["code"] == "max_tokens_too_large"
    _error(create(backend="remote"), 400, "backend")
    r = create(stop="abc", max_tokens=4096)
    assert r.status_code == 200, r.text
    assert r.json()["config"]["stop"] == ["abc"]
    _error(api.post("/api/bots/b/versions", json={"max_tokens": 0}), 422, "max_tokens")
    _error(api.post("/api/bots/b/versions", json={"backend": "remote"}), 400, "backend")
    assert api.get("/api/bots/b").json()["version"] == 1


def test_405_lists_every_method_of_the_path(api):
    for method, path, allowed in [
        ("PUT", "/api/kbs", "GET, POST"),
        ("PATCH", "/api/bots", "GET, POST"),
        ("PUT", "/v1/files/file-x", "DELETE, GET"),
        ("DELETE", "/api/bots/b/versions", "GET, POST"),
    ]:
        r = api.request(method, path)
        assert r.status_code == 405, (method, path, r.text)
        assert r.headers["allow"] == allowed, (method, path)
        assert r.json()["error"]["message"].endswith(allowed)


def test_spec_states_the_limits_the_code_enforces(srv, api):
    from ladder.knowledge.retrieve import MAX_QUERY_CHARS

    spec = api.get("/openapi.json").json()
    models = spec["components"]["schemas"]
    assert models["SearchRequest"]["properties"]["query"]["maxLength"] == MAX_QUERY_CHARS
    assert models["ChatMessageIn"]["properties"]["role"]["enum"] == ["system", "user", "assistant", "developer"]
    cap = srv.app.state.ladder.config.max_tokens_cap
    assert models["BotSettings"]["properties"]["max_tokens"]["maximum"] == cap
    report = spec["paths"]["/api/climbs/{climb_id}/report"]["get"]["responses"]
    assert list(report["404"]["content"]) == ["application/json"]  # errors are JSON even where success is HTML
    assert api.post("/api/kbs", json={"name": "k"}).status_code == 200
    _error(api.post("/api/kbs/k/search", json={"query": "q" * (MAX_QUERY_CHARS + 1)}), 422, "query")
    _error(api.post("/api/kbs", json={"name": "k2", "chunk_overlap": False}), 422, "chunk_overlap")
    _error(api.post("/api/kbs", json={"name": "k3", "chunk_size": 8192}), 422, "chunk_size")
