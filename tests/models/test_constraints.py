"""Constrained decoding on the torch backend: a random tiny Llama sampling at temperature 1.0 stays in the format."""

from __future__ import annotations

import json
import re

import jsonschema
import pytest

from ladder.errors import InvalidInput
from ladder.models import service
from ladder.models.constraints import Constraint
from ladder.models.types import ChatRequest

# Awkward on purpose: quotes, a backslash, a newline, unicode, spaces, and a label that is a prefix of another.
LABELS = ["billing", "card lost", 'say "hi"', "back\\slash", "new\nline", "café ☕", "top", "top_up"]
SCHEMA = {
    "type": "object",
    "properties": {
        "intent": {"type": "string", "enum": ["refund", "card_lost", "other"]},
        "urgent": {"type": "boolean"},
        "score": {"type": "number", "minimum": 0, "maximum": 1},
        "customer": {
            "type": "object",
            "properties": {
                "name": {"type": "string", "maxLength": 6},
                "age": {"type": "integer", "minimum": 0, "maximum": 120},
            },
            "required": ["name", "age"],
            "additionalProperties": False,
        },
        "items": {
            "type": "array",
            "maxItems": 3,
            "items": {
                "type": "object",
                "properties": {
                    "sku": {"type": "string", "enum": ["A1", "B2"]},
                    "qty": {"type": "integer", "minimum": 1, "maximum": 99},
                },
                "required": ["sku", "qty"],
                "additionalProperties": False,
            },
        },
    },
    "required": ["intent", "urgent", "customer", "items"],
    "additionalProperties": False,
}
PROMPTS = ["Hello there", "My card never arrived", "refund please", "a", "Tell me a story about cats"]
SEEDS = range(4)
ROWS = 50  # 4 seeds x 50 rows: 200 independent samples, one batch per seed (a step costs the longest row)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """The tiny model's steps are too small to split: on shared cores a second torch thread only
    waits for the first, and each step ran ten times slower (measured here)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def req(text: str, constraint: Constraint | None, **params) -> ChatRequest:
    params.setdefault("max_tokens", 24)
    return ChatRequest.of([{"role": "user", "content": text}], constraint=constraint, **params)


def sampled(model: str, constraint: Constraint | None, **params) -> list:
    out = []
    for seed in SEEDS:
        batch = [req(PROMPTS[i % len(PROMPTS)], constraint, temperature=1.0, seed=seed, **params) for i in range(ROWS)]
        out += service.chat_batch(model, batch)
    return out


def test_choice_gives_exactly_one_label_for_200_samples(tiny_model):
    answers = sampled(tiny_model, Constraint.choice(LABELS))
    assert len(answers) == 200
    assert all(a.text in LABELS for a in answers), {a.text for a in answers} - set(LABELS)
    assert all(a.finish_reason == "stop" for a in answers)  # EOS right after the label
    # Sampling, not one fixed answer: the constraint leaves the choice among labels to the model.
    assert len({a.text for a in answers}) >= 3


def test_free_text_from_the_same_model_is_not_in_the_set(tiny_model):
    # Without this the test above could pass on a model that only ever says labels.
    batch = [req(p, None, temperature=1.0, max_tokens=8) for p in PROMPTS * 10]
    assert not any(a.text in LABELS for a in service.chat_batch(tiny_model, batch))


def check_json(answers: list) -> None:
    order = list(SCHEMA["properties"])
    for a in answers:
        assert a.finish_reason == "stop" and a.constraint_mode == "native", a.text
        doc = json.loads(a.text)
        jsonschema.validate(doc, SCHEMA)
        assert list(doc) == [k for k in order if k in doc]  # properties come in the schema's order
    assert len({a.text for a in answers}) > len(answers) // 2


def test_json_schema_gives_valid_json(tiny_model):
    c = Constraint.json_schema(SCHEMA)
    check_json(
        service.chat_batch(tiny_model, [req(p, c, temperature=1.0, seed=7, max_tokens=160) for p in PROMPTS * 4])
    )


@pytest.mark.slow  # about 80 s on 2 shared cores: each step samples 50 rows over 49,152 tokens
def test_json_schema_gives_valid_json_for_200_samples(tiny_model):
    check_json(sampled(tiny_model, Constraint.json_schema(SCHEMA), max_tokens=160))


def test_regex_gives_a_full_match(tiny_model):
    pattern = r"[A-Z]{3}-[0-9]{2,4}"
    answers = sampled(tiny_model, Constraint.regex(pattern))
    assert all(re.fullmatch(pattern, a.text) for a in answers), [a.text for a in answers][:5]


def test_mixed_batch_rows_keep_their_own_constraint_or_none(tiny_model):
    free = [req(p, None) for p in PROMPTS]
    alone = service.chat_batch(tiny_model, free)
    mixed = service.chat_batch(
        tiny_model,
        [
            r
            for p, f in zip(PROMPTS, free, strict=True)
            for r in (req(p, Constraint.choice(LABELS)), f, req(p, Constraint.json_schema(SCHEMA), max_tokens=160))
        ],
    )
    for i, a in enumerate(alone):
        label, text, doc = mixed[3 * i : 3 * i + 3]
        assert label.text in LABELS
        assert text.text == a.text  # greedy: a free row is untouched by its constrained neighbours
        jsonschema.validate(json.loads(doc.text), SCHEMA)
    hot = service.chat_batch(
        tiny_model,
        [req(p, Constraint.choice(LABELS) if i % 2 else None, temperature=1.0) for i, p in enumerate(PROMPTS * 4)],
    )
    assert all(a.text in LABELS for a in hot[1::2])
    assert not any(a.text in LABELS for a in hot[0::2])


def test_stream_holds_to_the_constraint(tiny_model):
    for seed in range(4):
        r = req(PROMPTS[seed], Constraint.choice(LABELS), temperature=1.0, seed=seed)
        deltas = list(service.stream(tiny_model, r))
        assert "".join(d.text for d in deltas) in LABELS
        assert deltas[-1].finish_reason == "stop"
        r = req(PROMPTS[seed], Constraint.json_schema(SCHEMA), temperature=1.0, seed=seed, max_tokens=160)
        jsonschema.validate(json.loads("".join(d.text for d in service.stream(tiny_model, r))), SCHEMA)


def test_masked_sampling_keeps_top_p(tiny_model):
    # top_p this small keeps only the most likely allowed token: every sample is the greedy answer.
    c = Constraint.choice(LABELS)
    greedy = service.chat(tiny_model, req("refund please", c)).text
    tight = [service.chat(tiny_model, req("refund please", c, temperature=1.0, top_p=1e-6, seed=s)).text for s in SEEDS]
    assert tight == [greedy] * len(SEEDS)


def test_max_tokens_cuts_a_constrained_answer_as_length(tiny_model):
    r = service.chat(tiny_model, req("hi", Constraint.json_schema(SCHEMA), max_tokens=3))
    assert r.finish_reason == "length" and r.usage.completion_tokens == 3


def test_a_schema_that_cannot_be_enforced_is_refused_before_generating(tiny_model):
    bad = Constraint.json_schema({"type": "object", "properties": {"a": {"$ref": "#/definitions/missing"}}})
    with pytest.raises(InvalidInput) as e:
        service.chat_batch(tiny_model, [req("hi", None), req("hi", bad)])
    assert e.value.param == "schema" and "missing" in str(e.value)


def test_rows_with_one_constraint_share_its_compiled_grammar(tiny_model):
    c = Constraint.choice(LABELS)
    service.chat_batch(tiny_model, [req(p, c) for p in PROMPTS])
    service.chat(tiny_model, req("again", Constraint.choice(list(LABELS))))  # equal, so the same key
    backend = service.open_backend(tiny_model)
    assert backend.masks._compiled.cache_info().misses == 1


def test_a_choice_constraint_leaves_room_for_the_longest_label_spelt_byte_by_byte():
    from ladder.models.constraints import Constraint
    from ladder.models.types import GenerationParams

    labels = ["billing", "thermostat_problem", "café"]
    p = GenerationParams(max_tokens=8, constraint=Constraint.choice(labels))
    assert p.max_tokens == len("thermostat_problem") + 1
    assert GenerationParams(max_tokens=8).max_tokens == 8  # free text keeps the caller's cap
