"""Auth, error shapes, limits and files through the official openai SDK against a real server."""

from __future__ import annotations

import httpx
import openai
import pytest


def test_health_and_openapi(srv):
    r = httpx.get(srv.url + "/api/health")
    assert r.status_code == 200 and r.json()["in_flight"] == 0
    spec = httpx.get(srv.url + "/openapi.json").json()
    assert "/v1/chat/completions" in spec["paths"]


def test_missing_bad_and_revoked_keys_are_401(srv):
    from ladder.server import keys

    with pytest.raises(openai.AuthenticationError) as e:
        srv.client("sk-ladder-wrong").models.list()
    assert e.value.status_code == 401
    body = httpx.get(srv.v1 + "/models").json()
    assert set(body["error"]) == {"message", "type", "param", "code"}
    rec, secret = keys.create_key("default")
    assert srv.client(secret).models.list().data
    keys.revoke_key(rec.id)
    with pytest.raises(openai.AuthenticationError):
        srv.client(secret).models.list()


def test_keys_are_stored_hashed(srv):
    from ladder.store.db import get_db

    rows = get_db().query("SELECT * FROM api_keys")
    assert rows and all(srv.admin_key not in " ".join(map(str, tuple(r))) for r in rows)


def test_unknown_model_is_404_and_bad_body_is_422(srv):
    c = srv.client()
    with pytest.raises(openai.NotFoundError) as e:
        c.chat.completions.create(model="nope", messages=[{"role": "user", "content": "hi"}])
    assert e.value.body["code"] == "model_not_found"
    with pytest.raises(openai.UnprocessableEntityError):
        c.chat.completions.create(model="x", messages=[])
    r = httpx.post(
        srv.v1 + "/chat/completions",
        content=b"{not json",
        headers={"Authorization": f"Bearer {srv.admin_key}", "content-type": "application/json"},
    )
    assert r.status_code == 422 and "error" in r.json()


def test_body_limit_is_413_without_echo(make_server):
    from ladder.server.config import ServerConfig

    s = make_server(ServerConfig(max_body_bytes=10_000))
    big = "A" * 50_000
    r = httpx.post(
        s.v1 + "/chat/completions",
        json={"model": "m", "messages": [{"role": "user", "content": big}]},
        headers={"Authorization": f"Bearer {s.admin_key}"},
    )
    assert r.status_code == 413 and r.json()["error"]["code"] == "request_too_large"
    assert len(r.content) < 1000
    assert httpx.get(s.url + "/api/health").status_code == 200


def test_rate_limit_is_429_with_headers(make_server):
    from ladder.server.config import ServerConfig

    s = make_server(ServerConfig(rate_limit_rpm=3))
    h = {"Authorization": f"Bearer {s.admin_key}"}
    codes = [httpx.get(s.v1 + "/models", headers=h) for _ in range(4)]
    assert [r.status_code for r in codes[:3]] == [200, 200, 200]
    last = codes[3]
    assert last.status_code == 429
    assert int(last.headers["retry-after"]) >= 1
    assert last.headers["x-ratelimit-limit-requests"] == "3"
    with pytest.raises(openai.RateLimitError):
        s.client().models.list()
    # the other project's key has its own bucket
    assert httpx.get(s.v1 + "/models", headers={"Authorization": f"Bearer {s.key_b}"}).status_code == 200


def test_max_tokens_cap(srv):
    with pytest.raises(openai.BadRequestError) as e:
        srv.client().chat.completions.create(
            model="smollm2-135m-instruct", max_tokens=10**6, messages=[{"role": "user", "content": "hi"}]
        )
    assert e.value.body["code"] == "max_tokens_too_large"


def test_files_round_trip_and_isolation(srv):
    a, b = srv.client(), srv.client(srv.key_b)
    data = b'{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}\n'
    f = a.files.create(file=("train.jsonl", data), purpose="fine-tune")
    assert f.filename == "train.jsonl" and f.bytes == len(data)
    assert [x.id for x in a.files.list()] == [f.id]
    assert a.files.retrieve(f.id).id == f.id
    assert a.files.content(f.id).read() == data
    assert b.files.list().data == []
    for call in (lambda: b.files.retrieve(f.id), lambda: b.files.content(f.id), lambda: b.files.delete(f.id)):
        with pytest.raises(openai.NotFoundError):
            call()
    assert a.files.delete(f.id).deleted
    with pytest.raises(openai.NotFoundError):
        a.files.retrieve(f.id)


@pytest.mark.parametrize("name", ["../../etc/passwd", "/etc/passwd", "a\x00b.jsonl", "..\\..\\x.jsonl"])
def test_hostile_upload_names_stay_inside_the_data_dir(srv, ladder_home, tmp_path, name):
    data = b'{"prompt": "a", "completion": "b"}\n'
    f = srv.client().files.create(file=(name, data), purpose="fine-tune")
    assert "\x00" not in f.filename
    rec_files = [p for p in tmp_path.rglob("*") if p.is_file() and p.read_bytes() == data]
    assert rec_files and all(ladder_home in p.parents for p in rec_files)


def test_malformed_and_binary_uploads_are_400(srv):
    c = srv.client()
    with pytest.raises(openai.BadRequestError) as e:
        c.files.create(file=("t.jsonl", b'{"messages": []}\n{oops\n'), purpose="fine-tune")
    assert "line 1" in e.value.message and "line 2" in e.value.message
    with pytest.raises(openai.BadRequestError) as e:
        c.files.create(file=("doc.pdf", bytes(range(256)) * 10), purpose="fine-tune")
    assert "UTF-8" in e.value.message
    assert c.files.list().data == []


def test_upload_limit_is_413(make_server):
    from ladder.server.config import ServerConfig

    s = make_server(ServerConfig(max_upload_bytes=1000))
    with pytest.raises(openai.APIStatusError) as e:
        s.client().files.create(file=("t.jsonl", b'{"prompt": "a", "completion": "b"}\n' * 100), purpose="fine-tune")
    assert e.value.status_code == 413
