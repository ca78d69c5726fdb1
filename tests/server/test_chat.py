"""Chat and embeddings through the openai SDK against a real server with the tiny model."""

from __future__ import annotations

import base64
import json
import time

import httpx
import numpy as np
import openai
import pytest

HI = [{"role": "user", "content": "Say hello."}]


def test_models_list_has_base_and_tiny(srv, tiny_model):
    ids = [m.id for m in srv.client().models.list()]
    assert "smollm2-135m-instruct" in ids and tiny_model in ids
    assert srv.client().models.retrieve(tiny_model).id == tiny_model


def test_chat_is_seeded_and_metered(srv, tiny_model):
    c = srv.client()
    a = c.chat.completions.create(model=tiny_model, messages=HI, max_tokens=8, temperature=0.9, seed=3)
    b = c.chat.completions.create(model=tiny_model, messages=HI, max_completion_tokens=8, temperature=0.9, seed=3)
    assert a.object == "chat.completion" and a.id.startswith("chatcmpl-")
    assert a.choices[0].message.content == b.choices[0].message.content
    assert a.usage.completion_tokens <= 8 and a.usage.prompt_tokens > 0
    assert a.choices[0].finish_reason in ("stop", "length")
    usage = httpx.get(srv.url + "/api/usage", headers={"Authorization": f"Bearer {srv.admin_key}"}).json()
    row = next(r for r in usage["data"] if r["key"] == tiny_model)
    assert row["calls"] == 2 and row["completion_tokens"] == a.usage.completion_tokens * 2
    # the other project sees none of it
    other = httpx.get(srv.url + "/api/usage", headers={"Authorization": f"Bearer {srv.key_b}"}).json()
    assert other["data"] == []


def test_stream_matches_and_ends_with_done(srv, tiny_model):
    c = srv.client()
    full = c.chat.completions.create(model=tiny_model, messages=HI, max_tokens=12)
    chunks = list(
        c.chat.completions.create(
            model=tiny_model, messages=HI, max_tokens=12, stream=True, stream_options={"include_usage": True}
        )
    )
    text = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
    assert text == full.choices[0].message.content
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == full.usage.completion_tokens
    raw = httpx.post(
        srv.v1 + "/chat/completions",
        headers={"Authorization": f"Bearer {srv.admin_key}"},
        json={"model": tiny_model, "messages": HI, "max_tokens": 3, "stream": True},
    )
    assert raw.text.rstrip().endswith("data: [DONE]")


def test_context_length_exceeded_is_a_fast_400(srv, tiny_model):
    long = [{"role": "user", "content": "word " * 5000}]
    t0 = time.perf_counter()
    with pytest.raises(openai.BadRequestError) as e:
        srv.client().chat.completions.create(model=tiny_model, messages=long, max_tokens=16)
    assert e.value.body["code"] == "context_length_exceeded"
    assert time.perf_counter() - t0 < 5
    with pytest.raises(openai.BadRequestError):
        srv.client().chat.completions.create(model=tiny_model, messages=long, max_tokens=16, stream=True)


def test_json_response_format_is_validated(srv, tiny_model):
    # a local model decodes under the constraint (no retry loop): the answer is a JSON object, or the
    # start of one cut at max_tokens and said so; a remote one that cannot constrain gets the 422
    # (tests/server/test_response_format.py)
    out = srv.client().chat.completions.create(
        model=tiny_model, messages=HI, max_tokens=8, response_format={"type": "json_object"}
    )
    if out.choices[0].finish_reason == "length":
        assert out.usage.completion_tokens == 8
    else:
        assert isinstance(json.loads(out.choices[0].message.content), dict)
    with pytest.raises(openai.BadRequestError):
        srv.client().chat.completions.create(
            model=tiny_model,
            messages=HI,
            max_tokens=8,
            response_format={"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": 12}}},
        )


def test_unsupported_inputs_are_refused_by_the_schema(srv, tiny_model):
    # the OpenAPI schema says roles are system/user/assistant/developer and n is 1, and so does the server
    c = srv.client()
    with pytest.raises(openai.UnprocessableEntityError) as e:
        c.chat.completions.create(model=tiny_model, messages=[{"role": "tool", "content": "x"}])
    assert e.value.body["param"] == "messages[0].role"
    with pytest.raises(openai.UnprocessableEntityError) as e:
        c.chat.completions.create(model=tiny_model, messages=HI, n=2)
    assert e.value.body["param"] == "n"


def test_disconnect_stops_generation(srv, tiny_model):
    health = srv.url + "/api/health"
    body = {
        "model": tiny_model,
        "messages": [{"role": "user", "content": "hi"}],
        "max_tokens": 1900,
        "stream": True,
        "temperature": 1.0,
        "seed": 1,
    }
    with (
        httpx.Client(timeout=30) as client,
        client.stream(
            "POST", srv.v1 + "/chat/completions", json=body, headers={"Authorization": f"Bearer {srv.admin_key}"}
        ) as r,
    ):
        lines = r.iter_lines()  # kept referenced: dropping it would close the connection early
        seen = 0
        for line in lines:
            seen += line.startswith("data: {")
            if seen >= 5:
                break
        assert httpx.get(health).json()["in_flight"] == 1
    t0 = time.perf_counter()
    while httpx.get(health).json()["in_flight"] != 0:
        assert time.perf_counter() - t0 < 2.0, "generation still running 2 s after the client left"
        time.sleep(0.05)


def test_concurrent_streams_per_key_are_limited(make_server, tiny_model):
    from ladder.server.config import ServerConfig

    s = make_server(ServerConfig(max_streams_per_key=1))
    body = {"model": tiny_model, "messages": HI, "max_tokens": 1500, "stream": True, "temperature": 1.0}
    h = {"Authorization": f"Bearer {s.admin_key}"}
    with (
        httpx.Client(timeout=30) as client,
        client.stream("POST", s.v1 + "/chat/completions", json=body, headers=h) as first,
    ):
        lines = first.iter_lines()
        next(lines)
        second = httpx.post(s.v1 + "/chat/completions", json=body, headers=h)
        assert second.status_code == 429 and second.json()["error"]["code"] == "too_many_streams"
        other = httpx.post(
            s.v1 + "/chat/completions",
            json={**body, "max_tokens": 2},
            headers={"Authorization": f"Bearer {s.key_b}"},
            timeout=60,
        )
        assert other.status_code == 200, other.text


@pytest.mark.slow
def test_embeddings(srv):
    c = srv.client()
    out = c.embeddings.create(model="all-minilm-l6-v2", input=["refund my order", "where is my parcel"])
    assert len(out.data) == 2 and len(out.data[0].embedding) == 384
    assert out.usage.prompt_tokens > 0
    b64 = c.embeddings.create(model="all-minilm-l6-v2", input="refund my order", encoding_format="base64")
    decoded = np.frombuffer(base64.b64decode(b64.data[0].embedding), dtype="<f4")  # asked for: left encoded
    assert decoded.tolist() == pytest.approx(out.data[0].embedding, abs=1e-6)
    with pytest.raises(openai.NotFoundError):
        c.embeddings.create(model="text-embedding-3-small", input="x")
    with pytest.raises(openai.BadRequestError):
        c.embeddings.create(model="all-minilm-l6-v2", input=[""])


def test_errors_never_echo_big_input(srv):
    junk = "Z" * 500_000
    r = httpx.post(
        srv.v1 + "/chat/completions",
        json={"model": junk[:400], "messages": junk},
        headers={"Authorization": f"Bearer {srv.admin_key}"},
    )
    assert r.status_code == 422 and len(r.content) < 2000
    assert json.loads(r.content)["error"]["param"] == "messages"


@pytest.mark.slow
def test_default_model_through_the_sdk(srv):
    c = srv.client()
    msgs = [{"role": "user", "content": "What is the capital of France? Answer in one word."}]
    out = c.chat.completions.create(model="smollm2-135m-instruct", messages=msgs, max_tokens=8)
    assert "paris" in out.choices[0].message.content.lower()
    chunks = list(
        c.chat.completions.create(
            model="smollm2-135m-instruct",
            messages=msgs,
            max_tokens=8,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices) == out.choices[0].message.content
    assert chunks[-1].usage.completion_tokens == out.usage.completion_tokens
