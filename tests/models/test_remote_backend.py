"""The remote backend against a real HTTP server on loopback speaking OpenAI's chat API."""

from __future__ import annotations

import socket

import pytest

from ladder.errors import BackendError, InvalidInput
from ladder.models import registry, service
from ladder.models.types import ChatRequest
from ladder.store.usage import summary
from tests.models import openai_stub_server


@pytest.fixture
def stub():
    server, url = openai_stub_server.start()
    openai_stub_server.Handler.seen.clear()
    yield url
    server.shutdown()


def ask(model: str, text: str = "hello big world", **params) -> ChatRequest:
    return ChatRequest.of([{"role": "system", "content": "be brief"}, {"role": "user", "content": text}], **params)


def test_chat_stream_and_batch_through_the_sdk(stub, monkeypatch):
    monkeypatch.setenv("STUB_KEY", "sk-test-123")
    registry.add_remote("far", stub, "stub-model", api_key_env="STUB_KEY")
    r = service.chat("far", ask("far", max_tokens=20, stop=["zz"]))
    assert r.text == "dlrow gib olleh" and r.finish_reason == "stop"
    assert (r.usage.prompt_tokens, r.usage.completion_tokens) == (11, 3)
    sent = openai_stub_server.Handler.seen[-1]
    assert sent["auth"] == "Bearer sk-test-123"
    assert sent["body"]["model"] == "stub-model" and sent["body"]["max_tokens"] == 20
    assert sent["body"]["stop"] == ["zz"] and sent["body"]["messages"][0]["role"] == "system"

    deltas = list(service.stream("far", ask("far")))
    assert "".join(d.text for d in deltas) == "dlrow gib olleh"
    assert deltas[-1].usage.completion_tokens == 3

    out = service.chat_batch("far", [ask("far", "a b"), ask("far", "c d")])
    assert [o.text for o in out] == ["b a", "d c"]
    assert summary(by="model")[0]["calls"] == 4


def test_http_errors_name_the_endpoint(stub):
    registry.add_remote("broken", stub, "fail-503")
    with pytest.raises(BackendError, match=r"127\.0\.0\.1.* answered HTTP 503 .*stub failure 503"):
        service.chat("broken", ask("broken"))


def test_unreachable_endpoint_is_a_clear_error():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    registry.add_remote("gone", f"http://127.0.0.1:{port}/v1", "m")
    with pytest.raises(BackendError, match=f"could not reach http://127.0.0.1:{port}/v1"):
        service.chat("gone", ask("gone"))


def test_missing_api_key_variable_is_reported(stub, monkeypatch):
    monkeypatch.delenv("NOPE_KEY", raising=False)
    registry.add_remote("nokey", stub, "m", api_key_env="NOPE_KEY")
    with pytest.raises(InvalidInput, match="NOPE_KEY"):
        service.chat("nokey", ask("nokey"))
