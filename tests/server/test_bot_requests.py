"""`bot:<name>` through the official openai SDK: the client's settings, response_format and citations in streams."""

from __future__ import annotations

import json

import httpx
import openai
import pytest

from tests.ui.scripted import build_scripted_model

CITED = "Refunds take five days [1]."
JSON_ANSWER = '{"days": 5}'
CITED_JSON = '{"answer": "Five days [1]."}'
ASK = [{"role": "user", "content": "How long do refunds take?"}]


@pytest.fixture(scope="module")
def scripted_dirs(tmp_path_factory, smol_tokenizer_dir):
    root = tmp_path_factory.mktemp("scripted")
    return {
        "cite-llama": build_scripted_model(smol_tokenizer_dir, root / "cite", CITED),
        "json-llama": build_scripted_model(smol_tokenizer_dir, root / "json", JSON_ANSWER),
        "cjson-llama": build_scripted_model(smol_tokenizer_dir, root / "cjson", CITED_JSON),
    }


@pytest.fixture
def scripted(scripted_dirs):
    from ladder.models import registry

    for name, path in scripted_dirs.items():
        registry.add_local(name, path)
    return scripted_dirs


def _h(key: str) -> dict:
    return {"Authorization": f"Bearer {key}"}


def _bot(srv, name: str, config: dict) -> None:
    r = httpx.post(srv.url + "/api/bots", json={"name": name, "config": config}, headers=_h(srv.admin_key))
    assert r.status_code == 200, r.text


def _kb(srv) -> None:
    h = _h(srv.admin_key)
    assert httpx.post(srv.url + "/api/kbs", json={"name": "policy"}, headers=h).status_code == 200
    doc = b"# Refunds\nRefunds take five days after we receive the item.\n"
    r = httpx.post(srv.url + "/api/kbs/policy/documents", headers=h, files={"file": ("refunds.md", doc)}, timeout=120)
    assert r.status_code == 200, r.text


def test_bot_takes_the_clients_max_tokens_and_stop(srv, scripted):
    _bot(srv, "cite", {"model": "cite-llama", "max_tokens": 64})
    c = srv.client()
    full = c.chat.completions.create(model="bot:cite", messages=ASK)
    assert full.choices[0].message.content == CITED
    short = c.chat.completions.create(model="bot:cite", messages=ASK, max_tokens=2)
    assert short.usage.completion_tokens == 2 and short.choices[0].finish_reason == "length"
    stopped = c.chat.completions.create(model="bot:cite", messages=ASK, stop=[" five"])
    assert stopped.choices[0].message.content == "Refunds take"
    # streamed answers take them too
    chunks = list(c.chat.completions.create(model="bot:cite", messages=ASK, max_tokens=2, stream=True))
    assert [ch.choices[0].finish_reason for ch in chunks if ch.choices and ch.choices[0].finish_reason] == ["length"]


def test_bot_takes_the_clients_temperature_and_seed(srv, tiny_model):
    _bot(srv, "rand", {"model": tiny_model, "max_tokens": 12, "temperature": 0.0})
    c = srv.client()
    greedy = {
        c.chat.completions.create(model="bot:rand", messages=ASK, seed=s).choices[0].message.content for s in (1, 2)
    }
    assert len(greedy) == 1  # the bot's own temperature 0: seeds change nothing
    hot = {
        c.chat.completions.create(model="bot:rand", messages=ASK, temperature=2.0, seed=s).choices[0].message.content
        for s in (1, 2)
    }
    assert len(hot) == 2  # the client's temperature reached the sampler: a random model then varies by seed


def test_bot_settings_stay_within_the_servers_cap(srv, scripted):
    _bot(srv, "cite", {"model": "cite-llama"})
    with pytest.raises(openai.BadRequestError) as e:
        srv.client().chat.completions.create(model="bot:cite", messages=ASK, max_tokens=10**6)
    assert e.value.body["code"] == "max_tokens_too_large"


def test_bot_response_format_is_checked(srv, scripted):
    _bot(srv, "json", {"model": "json-llama", "max_tokens": 32})
    _bot(srv, "cite", {"model": "cite-llama", "max_tokens": 32})
    c = srv.client()
    schema = {"type": "object", "properties": {"days": {"type": "integer"}}, "required": ["days"]}
    rf = {"type": "json_schema", "json_schema": {"name": "refund", "schema": schema, "strict": True}}
    out = c.chat.completions.create(model="bot:json", messages=ASK, response_format=rf)
    assert json.loads(out.choices[0].message.content) == {"days": 5}
    # A bot whose model writes prose never hands it out as JSON: either the backend constrained it
    # into valid JSON (or cut it, finish_reason "length"), or the answer is refused.
    for stream in (False, True):
        try:
            if stream:
                chunks = list(
                    c.chat.completions.create(model="bot:cite", messages=ASK, response_format=rf, stream=True)
                )
                text = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
                finish = [ch.choices[0].finish_reason for ch in chunks if ch.choices and ch.choices[0].finish_reason]
            else:
                resp = c.chat.completions.create(model="bot:cite", messages=ASK, response_format=rf)
                text, finish = resp.choices[0].message.content, [resp.choices[0].finish_reason]
        except openai.UnprocessableEntityError as e:
            assert e.body["code"] == "invalid_model_output"
            continue
        assert text != CITED
        if finish != ["length"]:
            assert isinstance(json.loads(text)["days"], int)


def test_streamed_bot_answer_carries_its_citations(srv, scripted):
    _kb(srv)
    _bot(srv, "cite", {"model": "cite-llama", "max_tokens": 32, "kbs": ["policy"]})
    c = srv.client()
    plain = c.chat.completions.create(model="bot:cite", messages=ASK)
    cites = plain.model_extra["citations"]
    assert plain.choices[0].message.content == CITED and len(cites) == 1
    chunks = list(c.chat.completions.create(model="bot:cite", messages=ASK, stream=True))
    streamed = [ch.model_extra["citations"] for ch in chunks if "citations" in (ch.model_extra or {})]
    assert streamed == [cites]
    assert "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices) == CITED


def test_streamed_json_bot_answer_carries_its_citations(srv, scripted):
    _kb(srv)
    _bot(srv, "cjson", {"model": "cjson-llama", "max_tokens": 32, "kbs": ["policy"]})
    c = srv.client()
    rf = {"type": "json_object"}
    plain = c.chat.completions.create(model="bot:cjson", messages=ASK, response_format=rf)
    cites = plain.model_extra["citations"]
    assert json.loads(plain.choices[0].message.content) == json.loads(CITED_JSON) and len(cites) == 1
    chunks = list(c.chat.completions.create(model="bot:cjson", messages=ASK, response_format=rf, stream=True))
    assert [ch.model_extra["citations"] for ch in chunks if "citations" in (ch.model_extra or {})] == [cites]
    text = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
    assert json.loads(text) == json.loads(CITED_JSON)
