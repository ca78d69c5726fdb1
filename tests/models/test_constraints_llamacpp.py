"""Constrained decoding on llama.cpp: llguidance masks (labels, schemas, regexes) hold a random tiny Llama."""

from __future__ import annotations

import json
import re

import jsonschema
import numpy as np
import pytest

from ladder.errors import BackendError, InvalidInput
from ladder.models.constrain_llamacpp import TokenMask
from ladder.models.constraints import Constraint
from ladder.models.llamacpp_backend import LlamaCppBackend
from ladder.models.registry import ModelSpec
from ladder.models.types import ChatRequest
from tests.models.test_constraints import LABELS, PROMPTS

# Numeric bounds included: llguidance enforces them (llama-cpp-python's GBNF converter dropped them).
SCHEMA = {
    "type": "object",
    "properties": {
        "intent": {"type": "string", "enum": ["refund", "card_lost", "other"]},
        "urgent": {"type": "boolean"},
        "score": {"type": "number", "minimum": 0, "exclusiveMaximum": 1},
        "customer": {
            "type": "object",
            "properties": {
                "name": {"type": "string", "maxLength": 6},
                "age": {"type": "integer", "minimum": 18, "maximum": 99},
            },
            "required": ["name", "age"],
            "additionalProperties": False,
        },
        "items": {
            "type": "array",
            "maxItems": 2,
            "items": {
                "type": "object",
                "properties": {
                    "sku": {"type": "string", "enum": ["A1", "B2"]},
                    "qty": {"type": "integer", "minimum": 5, "maximum": 100, "multipleOf": 5},
                },
                "required": ["sku", "qty"],
                "additionalProperties": False,
            },
        },
    },
    "required": ["intent", "urgent", "customer", "items"],
    "additionalProperties": False,
}


@pytest.fixture(scope="module")
def llama(tiny_model_dir, tmp_path_factory, one_llama_thread):
    """The tiny random Llama exported to GGUF (f32) and loaded by llama.cpp."""
    from transformers import AutoTokenizer, LlamaForCausalLM

    from ladder.models.gguf_writer import write_llama_gguf

    path = tmp_path_factory.mktemp("tiny-gguf") / "tiny.gguf"
    write_llama_gguf(
        LlamaForCausalLM.from_pretrained(tiny_model_dir),
        AutoTokenizer.from_pretrained(tiny_model_dir),
        path,
        quant="f32",
    )
    return LlamaCppBackend(ModelSpec(name="tiny-gguf", backend="llamacpp", path=str(path)))


def req(i: int, constraint: Constraint | None, **params) -> ChatRequest:
    params.setdefault("max_tokens", 24)
    params.setdefault("temperature", 1.0)
    return ChatRequest.of(
        [{"role": "user", "content": PROMPTS[i % len(PROMPTS)]}], constraint=constraint, seed=i, **params
    )


def test_labels_are_decoded_as_their_own_tokens_and_nothing_else(llama):
    """Labels with quotes, backslashes, newlines and unicode come out exactly, spelt as the tokenizer spells them."""
    odd = ['say "hi"', "back\\slash", "new\nline", "café ☕"]
    answers = llama.chat_batch([req(i, Constraint.choice(odd), temperature=1.0) for i in range(30)])
    assert all(a.text in odd for a in answers) and len({a.text for a in answers}) >= 2
    # One label's other spellings are refused: only its canonical first token may start it.
    mask = TokenMask(llama.grammar(Constraint.choice(["activate"])), sorted(llama.eos_ids), llama.llm.n_vocab())
    canonical = llama.llm.tokenize(b"activate", add_bos=False, special=False)
    (first_letter,) = llama.llm.tokenize(b"a", add_bos=False, special=False)
    scores = mask(np.array([1]), np.zeros(llama.llm.n_vocab(), dtype=np.float32))
    assert np.flatnonzero(np.isfinite(scores)).tolist() == [canonical[0]] and first_letter != canonical[0]


def test_a_regex_holds_on_llama_cpp(llama):
    pattern = r"[A-Z]{2}-[0-9]{3}"
    answers = llama.chat_batch([req(i, Constraint.regex(pattern), temperature=1.0, max_tokens=12) for i in range(20)])
    assert all(re.fullmatch(pattern, a.text) for a in answers), [a.text for a in answers]
    assert len({a.text for a in answers}) > 1


def test_json_strings_admit_no_raw_control_characters(llama):
    # A sampled U+0002 inside a string once made the answer fail json.loads (llama-cpp-python's GBNF).
    constraint = Constraint.json_schema({"type": "string"})
    mask = TokenMask(llama.grammar(constraint), llama._mask_tokenizer.eos_tokens, llama.llm.n_vocab())
    prompt = llama.llm.tokenize(b"x", add_bos=False)
    quote, ctrl, letter = (llama.llm.tokenize(t, add_bos=False) for t in (b'"', b"\x02", b"a"))
    mask(np.array(prompt), np.zeros(llama.llm.n_vocab(), dtype=np.float32))  # the first call sees the prompt
    scores = mask(np.array(prompt + quote), np.zeros(llama.llm.n_vocab(), dtype=np.float32))
    assert scores[ctrl[0]] == -np.inf and scores[letter[0]] == 0.0
    assert all(scores[t] == -np.inf for t in llama._mask_tokenizer.eos_tokens)  # the string is open


def test_choice_gives_exactly_one_label(llama):
    answers = llama.chat_batch([req(i, Constraint.choice(LABELS)) for i in range(40)])
    assert all(a.text in LABELS for a in answers), {a.text for a in answers} - set(LABELS)
    assert all(a.finish_reason == "stop" and a.constraint_mode == "native" for a in answers)
    assert len({a.text for a in answers}) >= 3
    free = llama.chat_batch([req(i, None) for i in range(10)])
    assert not any(a.text in LABELS for a in free) and free[0].constraint_mode == "none"


@pytest.mark.slow
def test_choice_holds_for_200_seeds(llama):
    answers = llama.chat_batch([req(i, Constraint.choice(LABELS)) for i in range(200)])
    assert all(a.text in LABELS and a.finish_reason == "stop" for a in answers)


def test_json_schema_gives_valid_json(llama):
    for i in range(8):
        a = llama.chat(req(i, Constraint.json_schema(SCHEMA), max_tokens=160))
        assert a.finish_reason == "stop", a.text
        jsonschema.validate(json.loads(a.text), SCHEMA)


@pytest.mark.slow
def test_json_schema_holds_for_50_seeds(llama):
    # About 6 s: 50 answers of up to 160 tokens from the random model, the schema mask on each token.
    for a in llama.chat_batch([req(i, Constraint.json_schema(SCHEMA), max_tokens=160) for i in range(50)]):
        assert a.finish_reason == "stop", a.text
        jsonschema.validate(json.loads(a.text), SCHEMA)


def test_stream_holds_to_the_constraint(llama):
    for i in range(3):
        deltas = list(llama.stream(req(i, Constraint.choice(LABELS))))
        assert "".join(d.text for d in deltas) in LABELS and deltas[-1].finish_reason == "stop"
    text = "".join(d.text for d in llama.stream(req(5, Constraint.json_schema(SCHEMA), max_tokens=160)))
    jsonschema.validate(json.loads(text), SCHEMA)


def test_max_tokens_cuts_a_constrained_answer_as_length(llama):
    a = llama.chat(req(1, Constraint.json_schema(SCHEMA), max_tokens=3))
    assert a.finish_reason == "length" and a.usage.completion_tokens == 3
    *_, last = llama.stream(req(1, Constraint.json_schema(SCHEMA), max_tokens=3))
    assert last.finish_reason == "length"


def test_grammars_are_compiled_once_per_constraint(llama):
    llama._grammar.cache_clear()
    llama.chat_batch([req(i, Constraint.choice(LABELS), max_tokens=8) for i in range(3)])
    assert llama._grammar.cache_info().misses == 1 and llama._grammar.cache_info().hits >= 2
    view = llama._mask_tokenizer
    llama.chat_batch([req(i, Constraint.json_schema(SCHEMA), max_tokens=4) for i in range(3)])
    assert llama._grammar.cache_info().misses == 2 and llama._mask_tokenizer is view


def test_what_the_schema_mask_cannot_enforce_is_refused_by_name(llama):
    unique = {
        "type": "object",
        "properties": {"tags": {"type": "array", "items": {"type": "string"}, "uniqueItems": True}},
    }
    with pytest.raises(InvalidInput) as e:
        llama.chat_batch([req(0, None), req(0, Constraint.json_schema(unique))])
    assert e.value.param == "schema" and str(e.value).startswith("schema.properties.tags: ")
    assert "uniqueItems" in str(e.value)
    with pytest.raises(InvalidInput) as e:
        llama.chat(req(0, Constraint.json_schema({"anyOf": [{"type": "string", "format": "no-such"}]})))
    assert str(e.value).startswith("schema.anyOf[0]: ") and "no-such" in str(e.value)
    with pytest.raises(InvalidInput) as e:
        llama.chat(req(0, Constraint.regex(r"(?=a)b")))  # a look-around: no token mask can hold it
    assert e.value.param == "pattern" and "regex constraint cannot be enforced" in str(e.value)


def test_a_token_the_schema_refuses_ends_the_generation_and_raises(llama):
    # Cannot happen while the mask is applied; if it did, nothing but EOS may follow.
    mask = TokenMask(llama.grammar(Constraint.json_schema({"type": "integer"})), [2], llama.llm.n_vocab())
    (letter,) = llama.llm.tokenize(b"a", add_bos=False)
    scores = mask(np.array([1]), np.zeros(llama.llm.n_vocab(), dtype=np.float32))  # the prompt: [1]
    assert scores[letter] == -np.inf and np.isfinite(scores).sum() >= 10 and not mask.error
    scores = mask(np.array([1, letter]), np.zeros(llama.llm.n_vocab(), dtype=np.float32))
    assert np.flatnonzero(np.isfinite(scores)).tolist() == [2] and mask.error
    with pytest.raises(BackendError, match="constrained decoding failed"):
        mask.raise_error()
