"""The remote backend against a real HTTP server on loopback speaking OpenAI's chat API."""

from __future__ import annotations

import socket

import pytest

from ladder.errors import BackendError, InvalidInput
from ladder.models import registry, service
from ladder.models.types import ChatRequest
from ladder.settings import reset_settings
from ladder.store.db import DEFAULT_PROJECT
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


def test_http_errors_name_the_model_and_the_status_never_the_endpoint(stub, caplog):
    registry.add_remote("broken", stub, "fail-503")
    with pytest.raises(BackendError) as e:
        service.chat("broken", ask("broken"))
    msg = e.value.message
    assert msg.startswith("remote model broken: its endpoint answered HTTP 503"), msg
    assert "127.0.0.1" not in msg and stub not in msg and "fail-503" not in msg
    assert e.value.upstream_status == 503
    logged = " ".join(r.getMessage() for r in caplog.records if r.name == "ladder.models")
    assert stub in logged and "stub failure 503" in logged  # the operator still sees where and why


def test_unreachable_endpoint_is_a_clear_error_without_the_host(caplog):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    registry.add_remote("gone", f"http://127.0.0.1:{port}/v1", "m")
    with pytest.raises(BackendError, match="^remote model gone: its endpoint could not be reached") as e:
        service.chat("gone", ask("gone"))
    assert str(port) not in e.value.message and "127.0.0.1" not in e.value.message
    with pytest.raises(BackendError) as streamed:
        list(service.stream("gone", ask("gone")))
    assert str(port) not in streamed.value.message
    assert f"127.0.0.1:{port}" in caplog.text


def test_missing_api_key_variable_is_reported_without_the_endpoint(stub, monkeypatch):
    monkeypatch.delenv("NOPE_KEY", raising=False)
    registry.add_remote("nokey", stub, "m", api_key_env="NOPE_KEY")
    with pytest.raises(InvalidInput, match="NOPE_KEY") as e:
        service.chat("nokey", ask("nokey"))
    assert "127.0.0.1" not in e.value.message


@pytest.mark.parametrize("name", ["HOME", "PATH", "USER", "LADDER_HOME", "SSH_AUTH_SOCK", "KEYS", "MONKEY_KEYRING"])
def test_api_key_env_must_name_a_key_variable(name, stub):
    with pytest.raises(InvalidInput, match="_API_KEY, _TOKEN or _KEY") as e:
        registry.add_remote("leaky", stub, "m", api_key_env=name)
    assert e.value.param == "api_key_env"
    assert registry.list_models()[-1].name != "leaky"  # nothing registered


@pytest.mark.parametrize("name", ["", "A B", "X-KEY", "1_KEY", "$HOME_KEY", "K" * 200 + "_KEY"])
def test_api_key_env_must_be_a_variable_name(name, stub):
    with pytest.raises(InvalidInput, match="not an environment variable name"):
        registry.add_remote("odd", stub, "m", api_key_env=name)


def test_allow_list_admits_other_names_and_is_all_a_project_model_may_read(stub, monkeypatch):
    monkeypatch.setenv("GATEWAY_SECRET", "sk-gateway")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-operator")
    with pytest.raises(InvalidInput):
        registry.add_remote("gw", stub, "m", api_key_env="GATEWAY_SECRET")
    with pytest.raises(InvalidInput, match="LADDER_REMOTE_KEY_ENVS"):
        registry.add_remote("mine", stub, "m", api_key_env="OPENAI_API_KEY", project_id=DEFAULT_PROJECT)

    monkeypatch.setenv("LADDER_REMOTE_KEY_ENVS", "GATEWAY_SECRET, OTHER_ONE")
    reset_settings()
    registry.add_remote("gw", stub, "m", api_key_env="GATEWAY_SECRET")
    registry.add_remote("mine", stub, "m", api_key_env="GATEWAY_SECRET", project_id=DEFAULT_PROJECT)
    assert service.chat("mine", ask("mine", "a b"), project_id=DEFAULT_PROJECT).text == "b a"
    assert openai_stub_server.Handler.seen[-1]["auth"] == "Bearer sk-gateway"


def test_a_stored_row_naming_another_variable_is_refused_at_use(stub, monkeypatch):
    """A registration from before the rule (or written by hand) must not send HOME either."""
    from ladder.store.db import get_db

    registry.add_remote("old", stub, "m")
    get_db().execute("UPDATE models SET api_key_env='HOME' WHERE name='old'")
    with pytest.raises(InvalidInput, match="HOME"):
        service.chat("old", ask("old"))
    assert not any(s["body"]["model"] == "m" for s in openai_stub_server.Handler.seen)


def test_cli_add_remote_refuses_a_variable_that_is_not_a_key():
    from typer.testing import CliRunner

    from ladder.cli.main import app

    out = CliRunner().invoke(
        app,
        ["models", "add-remote", "x", "--base-url", "http://127.0.0.1:9/v1", "--model", "m", "--api-key-env", "HOME"],
    )
    assert isinstance(out.exception, InvalidInput) and "_API_KEY, _TOKEN or _KEY" in out.exception.message
    assert "x" not in [m.name for m in registry.list_models()]


def test_a_remote_model_registered_again_elsewhere_is_served_from_its_new_endpoint(monkeypatch):
    """The loaded-backend cache must not hand out the client of the endpoint the name used to have."""
    monkeypatch.setenv("STUB_KEY", "sk-test-123")
    first, first_url = openai_stub_server.start()
    registry.add_remote("moving", first_url, "stub-model", api_key_env="STUB_KEY")
    assert service.chat("moving", ask("moving", "a b")).text == "b a"
    first.shutdown()
    registry.remove("moving")
    second, second_url = openai_stub_server.start()
    try:
        registry.add_remote("moving", second_url, "stub-model", api_key_env="STUB_KEY")
        assert service.chat("moving", ask("moving", "c d")).text == "d c"
    finally:
        second.shutdown()
