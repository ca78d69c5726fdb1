"""Constraints on remote endpoints: asked for natively where the endpoint can, else validated and retried once."""

from __future__ import annotations

import json

import pytest

from ladder.errors import InvalidInput
from ladder.models import registry, service
from ladder.models.constraints import Constraint
from ladder.models.registry import ModelSpec
from ladder.models.remote_backend import RemoteBackend
from ladder.models.types import ChatRequest
from tests.models import openai_stub_server

LABELS = ["refund", "card_lost", "other"]
SCHEMA = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"], "additionalProperties": False}


@pytest.fixture
def stub():
    server, url = openai_stub_server.start()
    openai_stub_server.Handler.seen.clear()
    yield url
    server.shutdown()


def backend(url: str, model: str = "m", server: str | None = None) -> RemoteBackend:
    meta = {"server": server} if server else {}
    return RemoteBackend(ModelSpec("far", "remote", base_url=url, remote_model=model, meta=meta))


def asking(answer: str, constraint: Constraint | None) -> ChatRequest:
    """A request the stub answers with `answer` (it echoes the last user message reversed)."""
    return ChatRequest.of([{"role": "user", "content": answer[::-1]}], constraint=constraint)


def sent() -> list[dict]:
    return [s["body"] for s in openai_stub_server.Handler.seen]


def test_a_schema_goes_as_strict_json_schema_and_any_object_as_json_object(stub):
    r = backend(stub).chat(asking('{"n": 3}', Constraint.json_schema(SCHEMA)))
    assert r.text == '{"n": 3}' and r.constraint_mode == "native"
    assert sent()[-1]["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "answer", "schema": SCHEMA, "strict": True},
    }
    backend(stub).chat(asking("{}", Constraint.json_schema(None)))
    assert sent()[-1]["response_format"] == {"type": "json_object"}
    assert backend(stub).chat(asking("hi", None)).constraint_mode == "none"
    assert "response_format" not in sent()[-1]


def test_a_choice_goes_as_an_enum_and_comes_back_as_the_bare_label(stub):
    r = backend(stub).chat(asking('{"label": "refund"}', Constraint.choice(LABELS)))
    assert r.text == "refund" and r.constraint_mode == "native"
    schema = sent()[-1]["response_format"]["json_schema"]["schema"]
    assert schema["properties"]["label"]["enum"] == LABELS and schema["required"] == ["label"]
    deltas = list(backend(stub).stream(asking('{"label": "other"}', Constraint.choice(LABELS))))
    assert "".join(d.text for d in deltas) == "other" and deltas[-1].finish_reason == "stop"


def test_vllm_gets_guided_choice_and_guided_regex(stub):
    far = backend(stub, server="vllm")
    r = far.chat(asking("card_lost", Constraint.choice(LABELS)))
    assert r.text == "card_lost" and r.constraint_mode == "native"
    assert sent()[-1]["guided_choice"] == LABELS and "response_format" not in sent()[-1]
    far.chat(asking("AB-12", Constraint.regex(r"[A-Z]{2}-\d+")))
    assert sent()[-1]["guided_regex"] == r"[A-Z]{2}-\d+"
    text = "".join(d.text for d in far.stream(asking('{"n": 1}', Constraint.json_schema(SCHEMA))))
    assert json.loads(text) == {"n": 1} and sent()[-1]["response_format"]["type"] == "json_schema"


def test_an_endpoint_that_refuses_the_format_is_validated_instead(stub):
    r = backend(stub, "noformat").chat(asking(" refund\n", Constraint.choice(LABELS)))
    assert r.text == "refund" and r.constraint_mode == "validated"
    assert "response_format" in sent()[0] and "response_format" not in sent()[1]  # refused, then asked plainly
    assert len(sent()) == 2  # a valid first answer needs no retry


def test_a_failing_answer_is_retried_once_with_what_was_wrong(stub):
    r = backend(stub, server="plain").chat(asking("maybe", Constraint.choice(LABELS)))
    assert r.constraint_mode == "validated"
    first, retry = sent()
    assert "response_format" not in first
    assert [m["role"] for m in retry["messages"]] == ["user", "assistant", "user"]
    assert retry["messages"][1]["content"] == "maybe"
    assert "exactly one of: refund, card_lost, other" in retry["messages"][2]["content"]
    # The stub echoes the correction back, so the retry fails too: the text is returned as it came.
    assert r.text == retry["messages"][2]["content"][::-1] and r.usage.prompt_tokens == 22
    text = "".join(
        d.text for d in backend(stub, server="plain").stream(asking('{"n": "x"}', Constraint.json_schema(SCHEMA)))
    )
    told = sent()[-1]["messages"][-1]["content"]
    assert "breaks its schema at n" in told and told.endswith(Constraint.json_schema(SCHEMA).schema_text)
    assert text == told[::-1]


def test_the_server_kind_is_registered_with_the_model(stub):
    registry.add_remote("guided", stub, "m", server="vllm")
    r = service.chat("guided", asking("other", Constraint.choice(LABELS)))
    assert r.text == "other" and sent()[-1]["guided_choice"] == LABELS
    with pytest.raises(InvalidInput) as e:
        registry.add_remote("odd", stub, "m", server="ollama")
    assert e.value.param == "server" and "openai, vllm, plain" in str(e.value)
