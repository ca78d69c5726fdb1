"""response_format as the pipelines' output contract: the policy, the served path through the SDK, and evals."""

from __future__ import annotations

import json
from dataclasses import dataclass

import openai
import pytest

from ladder.models.constraints import Constraint
from ladder.models.types import ChatRequest, Message
from ladder.pipelines.output_contract import InvalidModelOutput, OutputContract, from_response_format
from tests.ui.scripted import build_scripted_model

SCHEMA = {"type": "object", "properties": {"days": {"type": "integer"}}, "required": ["days"]}
ASK = [{"role": "user", "content": "How long do refunds take?"}]


@dataclass
class Answer:
    text: str
    finish_reason: str = "stop"
    constraint_mode: str | None = None


def _calls(*answers: Answer):
    seen: list[int] = []

    def generate(attempt: int) -> Answer:
        seen.append(attempt)
        return answers[attempt]

    return generate, seen


def test_the_request_carries_the_constraint_and_the_instruction():
    contract = OutputContract.json_schema(SCHEMA)
    req = contract.apply(ChatRequest([Message("system", "Be brief."), Message("user", "hi")]))
    assert req.params.constraint == Constraint.json_schema(SCHEMA)
    assert req.messages[0].content.startswith("Be brief.\n\n") and '"days"' in req.messages[0].content
    assert len(req.messages) == 2
    bare = from_response_format("json_object", None).apply(ChatRequest([Message("user", "hi")]))
    assert bare.params.constraint == Constraint.json_schema({"type": "object"})
    assert bare.messages[0].role == "system" and "JSON object" in bare.messages[0].content
    assert from_response_format("text", None) is None


def test_a_natively_constrained_answer_is_never_asked_for_again():
    contract = OutputContract.json_schema(SCHEMA)
    gen, seen = _calls(Answer('{"days": 5}', constraint_mode="native"))
    assert contract.enforce(gen, local=False)[1] == '{"days": 5}' and seen == [0]
    # cut at max_tokens: served as it is, finish_reason "length" tells the client (as OpenAI does)
    for answer, local in ((Answer('{"da', "length", "native"), False), (Answer('{"da', "length"), True)):
        gen, seen = _calls(answer)
        served, text = contract.enforce(gen, local=local)
        assert (text, served.finish_reason, seen) == ('{"da', "length", [0])
    # a local backend always constrains: no retry loop, even when the answer says nothing itself
    for answer, local in ((Answer('{"days": "five"}', constraint_mode="native"), False), (Answer("Five."), True)):
        gen, seen = _calls(answer, Answer('{"days": 5}'))
        with pytest.raises(InvalidModelOutput) as e:
            contract.enforce(gen, local=local)
        assert seen == [0] and "constraint" in e.value.message


def test_an_unconstrained_answer_is_checked_and_retried_once():
    contract = OutputContract.json_schema(SCHEMA)
    gen, seen = _calls(Answer("Five days."), Answer('Sure: ```json\n{"days": 5}\n```', constraint_mode="validated"))
    assert contract.enforce(gen, local=False)[1] == '{"days": 5}' and seen == [0, 1]
    gen, seen = _calls(Answer("Five days.", constraint_mode="none"), Answer('{"days": "five"}', "length"))
    with pytest.raises(InvalidModelOutput) as e:
        contract.enforce(gen, local=False)
    assert seen == [0, 1] and e.value.status == 422 and "at days" in e.value.message
    # the remote backend already checked and retried it ("validated"): not asked a third time
    gen, seen = _calls(Answer("Five days.", constraint_mode="validated"), Answer('{"days": 5}'))
    with pytest.raises(InvalidModelOutput):
        contract.enforce(gen, local=False)
    assert seen == [0]


def test_user_patterns_are_checked_under_the_bound():
    contract = OutputContract.json_schema({"properties": {"v": {"pattern": "(a|aa)+$"}}})
    verdict = contract.check('{"v": "' + "a" * 60 + '!"}')
    assert not verdict.ok and verdict.why


@pytest.fixture(scope="module")
def json_model_dir(tmp_path_factory, smol_tokenizer_dir):
    return build_scripted_model(smol_tokenizer_dir, tmp_path_factory.mktemp("scripted") / "json", '{"days": 5}')


@pytest.fixture
def json_model(json_model_dir) -> str:
    from ladder.models import registry

    registry.add_local("json-llama", json_model_dir)
    return "json-llama"


def test_schema_answer_through_the_sdk(srv, json_model):
    c = srv.client()
    rf = {"type": "json_schema", "json_schema": {"name": "refund", "schema": SCHEMA, "strict": True}}
    out = c.chat.completions.create(model=json_model, messages=ASK, response_format=rf)
    assert json.loads(out.choices[0].message.content) == {"days": 5}
    chunks = list(c.chat.completions.create(model=json_model, messages=ASK, response_format=rf, stream=True))
    assert json.loads("".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)) == {"days": 5}
    parsed = c.beta.chat.completions.parse(model=json_model, messages=ASK, response_format=rf)
    assert parsed.choices[0].message.content == '{"days": 5}'
    with pytest.raises(openai.BadRequestError) as e:
        c.chat.completions.create(
            model=json_model, messages=ASK, response_format={"type": "json_schema", "json_schema": {"name": "x"}}
        )
    assert e.value.body["param"] == "response_format.json_schema"


def test_an_eval_scores_the_contract_it_serves(json_model):
    from ladder.evals.runner import run_eval
    from ladder.evals.testset import TestItem
    from ladder.pipelines.config import PipelineConfig
    from ladder.pipelines.pipeline import Pipeline

    items = [TestItem(messages=ASK, reference='{"days": 5}')]
    ok = Pipeline(PipelineConfig(model=json_model, max_tokens=16), contract=OutputContract.json_schema(SCHEMA))
    run = run_eval(ok, items, metrics=["format"], store=False, batch_size=1)
    assert run.rows[0]["valid"] and run.format_compliance == 1.0
    strict = OutputContract.json_schema({**SCHEMA, "required": ["days", "currency"]})
    bad = Pipeline(PipelineConfig(model=json_model, max_tokens=16), contract=strict)
    run = run_eval(bad, items, metrics=["format"], store=False, batch_size=1)
    # the scripted model always says {"days": 5}; under a real constraint it may say something else,
    # but never something the contract accepts without "currency"
    row = run.rows[0]
    assert row["valid"] == strict.check(row["output"]).ok
    assert row["output"] != '{"days": 5}' or not row["valid"]


@pytest.fixture(scope="module")
def prose_model_dir(tmp_path_factory, smol_tokenizer_dir):
    return build_scripted_model(smol_tokenizer_dir, tmp_path_factory.mktemp("scripted") / "prose", "Five days.")


def test_a_remote_answer_is_checked_and_never_served_as_prose(srv, prose_model_dir, monkeypatch):
    from typer.testing import CliRunner

    from ladder.cli.main import app
    from ladder.models import registry

    registry.add_local("prose-llama", prose_model_dir)
    monkeypatch.setenv("LADDER_TEST_REMOTE_KEY", srv.admin_key)
    args = ["models", "add-remote", "far", "--base-url", srv.v1, "--model", "prose-llama"]
    out = CliRunner().invoke(app, [*args, "--api-key-env", "LADDER_TEST_REMOTE_KEY"])
    assert out.exit_code == 0, out.output
    rf = {"type": "json_schema", "json_schema": {"name": "refund", "schema": SCHEMA}}
    try:
        resp = srv.client().chat.completions.create(model="far", messages=ASK, response_format=rf, max_tokens=16)
    except openai.UnprocessableEntityError as e:  # the endpoint did not constrain: checked, retried, refused
        assert e.body["code"] == "invalid_model_output" and "2 attempts" in e.body["message"]
        return
    # an endpoint that took the schema (structured outputs) answered under it
    assert resp.choices[0].finish_reason == "length" or json.loads(resp.choices[0].message.content)["days"] >= 0
