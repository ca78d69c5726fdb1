"""`response_format` json_object / json_schema: the instruction given to the model and the output check."""

from __future__ import annotations

import json

from ladder.errors import InvalidInput, LadderError
from ladder.pipelines import schema_check
from ladder.server.schemas import ResponseFormat


class InvalidModelOutput(LadderError):
    """The model's answer did not satisfy the requested response_format."""

    status = 422
    error_type = "invalid_request_error"


def schema_of(rf: ResponseFormat | None) -> dict | None:
    """The JSON Schema asked for (checked to be a valid schema), {} for json_object, None for text."""
    if rf is None or rf.type == "text":
        return None
    if rf.type == "json_object":
        return {"type": "object"}
    if rf.json_schema is None or rf.json_schema.schema_ is None:
        raise InvalidInput(
            "response_format.json_schema.schema is required for type json_schema",
            param="response_format.json_schema",
        )
    return schema_check.check_schema(rf.json_schema.schema_, param="response_format.json_schema.schema")


def instruction(schema: dict) -> str:
    if schema == {"type": "object"}:
        return "Answer with one JSON object only: no prose, no code fences."
    return (
        "Answer with one JSON object only (no prose, no code fences) that is valid against this JSON "
        "Schema:\n" + json.dumps(schema)
    )


def extract(text: str) -> str:
    """The JSON object in an answer, tolerating code fences or prose around it."""
    t = text.strip()
    if t.startswith("```"):
        t = t.strip("`")
        if t.startswith("json"):
            t = t[4:]
        t = t.strip()
    start, end = t.find("{"), t.rfind("}")
    return t[start : end + 1] if 0 <= start < end else t


def check(text: str, schema: dict) -> tuple[str | None, str]:
    """(canonical JSON text or None, why it failed)."""
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
