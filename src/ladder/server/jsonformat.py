"""`response_format` json_object / json_schema: the instruction given to the model and the output check."""

from __future__ import annotations

import json

import jsonschema

from ladder.errors import InvalidInput, LadderError
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
    try:
        jsonschema.Draft202012Validator.check_schema(rf.json_schema.schema_)
    except jsonschema.SchemaError as e:
        raise InvalidInput(
            f"response_format.json_schema.schema is not a valid JSON Schema: {e.message}",
            param="response_format.json_schema.schema",
        ) from e
    return rf.json_schema.schema_


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
    if not isinstance(value, dict):
        return None, "not a JSON object"
    errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(value), key=lambda e: list(e.path))
    if errors:
        where = "/".join(str(p) for p in errors[0].path) or "(root)"
        return None, f"at {where}: {errors[0].message[:200]}"
    return json.dumps(value, ensure_ascii=False), ""
