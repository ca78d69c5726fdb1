"""A `response_format` as one output stage: the instruction and constraint a request carries, and the answer's check.

The chat route, the bot bridge and the eval runner (through `Pipeline`) all go through
`OutputContract`, so an eval measures what is served. A backend that decodes under the
constraint (`constraint_mode == "native"`: llama.cpp grammars, torch structured generation, an
endpoint with strict structured outputs) gives an answer valid by construction: it is checked,
never asked for again. An answer from a backend that could not constrain is checked, asked for
once more, and refused with 422 `invalid_model_output` when it is still not valid.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, TypeVar

from ladder.errors import InvalidInput, LadderError
from ladder.models.constraints import Constraint
from ladder.models.types import ChatRequest, Message
from ladder.pipelines import schema_check

# ChatResponse.constraint_mode: what the backend did with the constraint
NATIVE = "native"  # decoded under it
VALIDATED = "validated"  # decoded freely, checked, asked once more (remote endpoints that cannot constrain)
NONE = "none"  # nothing said (a local backend compiles every constraint itself)
JSON_OBJECT = {"type": "object"}
ATTEMPTS = 2  # for backends that cannot constrain: the answer and one retry


class InvalidModelOutput(LadderError):
    """The model's answer did not satisfy the requested response_format."""

    status = 422
    error_type = "invalid_request_error"


class Answer(Protocol):
    text: str
    finish_reason: str


A = TypeVar("A", bound=Answer)


@dataclass(frozen=True)
class Checked:
    text: str | None  # canonical JSON text when valid
    why: str = ""

    @property
    def ok(self) -> bool:
        return self.text is not None


def extract(text: str) -> str:
    """The JSON object in an answer, tolerating code fences or prose around it (free decoding adds them)."""
    t = text.strip()
    if t.startswith("```"):
        t = t.strip("`")
        if t.startswith("json"):
            t = t[4:]
        t = t.strip()
    start, end = t.find("{"), t.rfind("}")
    return t[start : end + 1] if 0 <= start < end else t


@dataclass(frozen=True)
class OutputContract:
    """Answers must be one JSON object valid against `constraint.schema` (json_object: any object)."""

    constraint: Constraint

    @classmethod
    def json_object(cls) -> OutputContract:
        return cls(Constraint.json_schema(JSON_OBJECT))

    @classmethod
    def json_schema(cls, schema: object, *, param: str = "response_format.json_schema.schema") -> OutputContract:
        """The contract of a user's schema, once it is checked to be a valid schema whose patterns compile."""
        return cls(Constraint.json_schema(schema_check.check_schema(schema, param=param)))

    @property
    def schema(self) -> dict:
        return self.constraint.schema or JSON_OBJECT

    def instruction(self) -> str:
        """Said in the prompt even when decoding is constrained: a model told the format writes better values."""
        if self.schema == JSON_OBJECT:
            return "Answer with one JSON object only: no prose, no code fences."
        return (
            "Answer with one JSON object only (no prose, no code fences) that is valid against this JSON "
            "Schema:\n" + json.dumps(self.schema)
        )

    def apply(self, req: ChatRequest) -> ChatRequest:
        """The request with the instruction in its system message and the constraint on its parameters."""
        note = self.instruction()
        msgs = list(req.messages)
        if msgs and msgs[0].role == "system":
            msgs[0] = Message("system", msgs[0].content + "\n\n" + note)
        else:
            msgs.insert(0, Message("system", note))
        return ChatRequest(msgs, dataclasses.replace(req.params, constraint=self.constraint))

    def check(self, text: str) -> Checked:
        """The answer as canonical JSON when it is one object valid against the schema (bounded patterns)."""
        return Checked(*check_json(text, self.schema))

    def enforce(self, generate: Callable[[int], A], *, local: bool) -> tuple[A, str]:
        """(answer, text to serve) from `generate(attempt)`; raises InvalidModelOutput when none is valid.

        `local`: the model runs on a local backend, which always decodes under the constraint. A
        remote answer says what its backend did (`constraint_mode`): "native" (the endpoint took the
        schema) or "validated" (the backend already checked it and asked once more). A natively
        constrained answer is never asked for again: one cut at max_tokens is served as it is, with
        finish_reason "length" (as OpenAI does), so the client knows to allow more tokens. Only an
        answer nobody checked is asked for again here.
        """
        why = ""
        for attempt in range(ATTEMPTS):
            answer = generate(attempt)
            verdict = self.check(answer.text)
            if verdict.ok:
                return answer, verdict.text  # type: ignore[return-value]
            why = verdict.why
            mode = getattr(answer, "constraint_mode", None)
            if mode == VALIDATED:
                break  # the backend's own retry is spent
            if mode == NATIVE or (local and mode in (None, NONE)):
                if answer.finish_reason == "length":
                    return answer, answer.text
                raise InvalidModelOutput(
                    f"the answer decoded under response_format is still not valid ({why}); this is a bug in "
                    "the backend's constraint, please report it",
                    code="invalid_model_output",
                    param="response_format",
                )
        raise InvalidModelOutput(
            f"the model's answer did not satisfy response_format after {ATTEMPTS} attempts: {why}; its backend "
            "cannot constrain decoding, so try a larger max_tokens, a clearer prompt or a stronger model",
            code="invalid_model_output",
            param="response_format",
        )


def runs_locally(model: str, backend: str | None, project_id: str) -> bool:
    """Whether `model` (on `backend`, or its own) is served by a local backend, which compiles constraints itself."""
    from ladder.models.registry import get_model

    return (backend or get_model(model, project_id).backend) != "remote"


def from_response_format(kind: str, schema: object | None, *, param: str = "response_format") -> OutputContract | None:
    """The contract of an OpenAI `response_format` (type and json_schema.schema); None for plain text."""
    if kind == "text":
        return None
    if kind == "json_object":
        return OutputContract.json_object()
    if kind == "json_schema":
        if schema is None:
            raise InvalidInput(
                f"{param}.json_schema.schema is required for type json_schema", param=f"{param}.json_schema"
            )
        return OutputContract.json_schema(schema, param=f"{param}.json_schema.schema")
    raise InvalidInput(f"{param}.type must be text, json_object or json_schema, not {str(kind)[:40]!r}", param=param)


def check_json(text: str, schema: dict) -> tuple[str | None, str]:
    """(canonical JSON text or None, why it failed) for an answer that must be one object valid against `schema`."""
    candidate = extract(text)
    try:
        value = json.loads(candidate)
    except json.JSONDecodeError as e:
        return None, f"not JSON ({e.msg} at position {e.pos})"
    except ValueError as e:  # e.g. an integer of more digits than Python converts
        return None, f"not usable JSON ({str(e)[:200]})"
    except RecursionError:
        return None, "not usable JSON (nested too deeply)"
    if not isinstance(value, dict):
        return None, "not a JSON object"
    why = schema_check.first_error(schema, value)
    if why is not None:
        return None, why
    return json.dumps(value, ensure_ascii=False), ""
