"""Two projects replay each other's ids on every native endpoint: always 404, and search never leaks."""

from __future__ import annotations

import httpx
import openai
import pytest


def _h(key: str) -> dict:
    return {"Authorization": f"Bearer {key}"}


@pytest.mark.slow
def test_projects_cannot_reach_each_others_objects(srv, tiny_model):
    a, b = _h(srv.admin_key), _h(srv.key_b)
    url = srv.url
    assert httpx.post(url + "/api/kbs", json={"name": "docs"}, headers=a).status_code == 200
    up = httpx.post(
        url + "/api/kbs/docs/documents",
        headers=a,
        files={"file": ("secret.md", b"# Refunds\nThe secret refund code is ZEBRA-42.\n")},
    )
    assert up.status_code == 200, up.text
    doc_id = up.json()["docs"][0]["id"]
    hits = httpx.post(url + "/api/kbs/docs/search", json={"query": "secret refund code"}, headers=a).json()
    assert any("ZEBRA-42" in h["text"] for h in hits["data"])
    bot = httpx.post(
        url + "/api/bots", json={"name": "helper", "config": {"model": tiny_model, "max_tokens": 4}}, headers=a
    )
    assert bot.status_code == 200, bot.text
    f = httpx.post(
        url + "/v1/files",
        headers=a,
        data={"purpose": "eval"},
        files={"file": ("t.jsonl", b'{"input": "a", "output": "b"}\n')},
    ).json()

    replay = [
        ("GET", "/api/kbs/docs", None),
        ("DELETE", "/api/kbs/docs", None),
        ("GET", "/api/kbs/docs/documents", None),
        ("DELETE", f"/api/kbs/docs/documents/{doc_id}", None),
        ("POST", "/api/kbs/docs/search", {"query": "secret"}),
        ("GET", "/api/bots/helper", None),
        ("GET", "/api/bots/helper/versions", None),
        ("POST", "/api/bots/helper/versions", {"max_tokens": 8}),
        ("POST", "/api/bots/helper/chat", {"messages": "hi"}),
        ("GET", f"/v1/files/{f['id']}", None),
        ("DELETE", f"/v1/files/{f['id']}", None),
        ("POST", "/api/evals", {"bot": "helper", "test_file": f["id"]}),
    ]
    for method, path, body in replay:
        r = httpx.request(method, url + path, json=body, headers=b, timeout=60)
        assert r.status_code == 404, (method, path, r.status_code, r.text)
        assert set(r.json()["error"]) == {"message", "type", "param", "code"}
    up_b = httpx.post(url + "/api/kbs/docs/documents", headers=b, files={"file": ("x.md", b"# x\nhello\n")})
    assert up_b.status_code == 404
    with pytest.raises(openai.NotFoundError):
        srv.client(srv.key_b).chat.completions.create(model="bot:helper", messages=[{"role": "user", "content": "x"}])
    assert "bot:helper" not in [m.id for m in srv.client(srv.key_b).models.list()]
    assert "bot:helper" in [m.id for m in srv.client().models.list()]

    # B's own KB with the same name never returns A's chunks
    assert httpx.post(url + "/api/kbs", json={"name": "docs"}, headers=b).status_code == 200
    httpx.post(url + "/api/kbs/docs/documents", headers=b, files={"file": ("mine.md", b"# Mine\nrefund policy\n")})
    hits_b = httpx.post(url + "/api/kbs/docs/search", json={"query": "secret refund code ZEBRA-42"}, headers=b).json()[
        "data"
    ]
    assert hits_b and all("ZEBRA" not in h["text"] for h in hits_b)
    # A still has everything
    assert httpx.get(url + "/api/kbs/docs/documents", headers=a).json()["data"][0]["id"] == doc_id


@pytest.mark.slow
def test_binary_pdf_upload_is_a_clear_4xx(srv, ladder_home, tmp_path):
    h = _h(srv.admin_key)
    httpx.post(srv.url + "/api/kbs", json={"name": "docs"}, headers=h)
    r = httpx.post(
        srv.url + "/api/kbs/docs/documents", headers=h, files={"file": ("../../evil.pdf", bytes(range(256)) * 40)}
    )
    assert 400 <= r.status_code < 500 and r.json()["error"]["message"]
    assert not (tmp_path / "evil.pdf").exists() and not (ladder_home.parent / "evil.pdf").exists()


def test_bot_chat_with_citations_field(srv, tiny_model):
    h = _h(srv.admin_key)
    r = httpx.post(
        srv.url + "/api/bots", json={"name": "b1", "config": {"model": tiny_model, "max_tokens": 3}}, headers=h
    )
    assert r.status_code == 200, r.text
    out = srv.client().chat.completions.create(model="bot:b1", messages=[{"role": "user", "content": "hi"}])
    assert out.model_extra["citations"] == []
    v2 = httpx.post(srv.url + "/api/bots/b1/versions", json={"max_tokens": 5}, headers=h).json()
    assert v2["version"] == 2
    ans = httpx.post(srv.url + "/api/bots/b1/chat", json={"messages": "hi"}, headers=h, timeout=60).json()
    assert ans["version"] == 2 and ans["usage"]["completion_tokens"] <= 5


@pytest.mark.slow
def test_eval_starts_at_once_and_is_polled(srv, tiny_model):
    import time

    h = _h(srv.admin_key)
    cfg = {"model": tiny_model, "max_tokens": 3, "parser": {"kind": "label", "labels": ["yes", "no"]}}
    assert httpx.post(srv.url + "/api/bots", json={"name": "judge", "config": cfg}, headers=h).status_code == 200
    rows = b"".join(
        b'{"input": "is %d even?", "output": "%s"}\n' % (i, b"yes" if i % 2 == 0 else b"no") for i in range(4)
    )
    f = srv.client().files.create(file=("test.jsonl", rows), purpose="eval")
    started = httpx.post(srv.url + "/api/evals", json={"bot": "judge", "test_file": f.id}, headers=h)
    assert started.status_code == 200, started.text
    task = started.json()
    assert task["status"] == "queued" and task["id"].startswith("eval-")  # a worker runs it, not the request
    deadline = time.time() + 120
    while task["status"] in ("queued", "running"):
        assert time.time() < deadline
        time.sleep(0.5)
        task = httpx.get(srv.url + f"/api/evals/{task['id']}", headers=h).json()
    assert task["status"] == "succeeded", task
    assert task["results"]["n"] == 4 and len(task["results"]["items"]) == 4
    assert httpx.get(srv.url + f"/api/evals/{task['id']}", headers=_h(srv.key_b)).status_code == 404
