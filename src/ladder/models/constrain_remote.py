"""A `Constraint` as an OpenAI-compatible request asks for it, and the check used where it cannot be asked."""

from __future__ import annotations

import json

from ladder.models.constraints import Constraint

# What an endpoint takes to constrain its output (a remote model's `meta["server"]`).
SERVERS = ("openai", "vllm", "plain")
# A choice sent as a JSON schema is wrapped in an object: OpenAI's strict mode needs an object at the root.
CHOICE_KEY = "label"


def native_args(constraint: Constraint, server: str) -> dict | None:
    """Request fields that make the endpoint decode under the constraint; None where it cannot.

    `server`: "vllm" (guided decoding: choice, regex, schema), "openai" (structured outputs:
    schemas only, a choice as a schema with an enum), "plain" (nothing: validate instead).
    """
    if server == "plain":
        return None
    if constraint.kind == "choice":
        if server == "vllm":
            return {"extra_body": {"guided_choice": list(constraint.choices)}}
        schema = {
            "type": "object",
            "properties": {CHOICE_KEY: {"type": "string", "enum": list(constraint.choices)}},
            "required": [CHOICE_KEY],
            "additionalProperties": False,
        }
        return {"response_format": _json_schema_format("choice", schema)}
    if constraint.kind == "regex":
        return {"extra_body": {"guided_regex": constraint.pattern}} if server == "vllm" else None
    schema = constraint.schema
    if schema == {"type": "object"}:
        return {"response_format": {"type": "json_object"}}
    return {"response_format": _json_schema_format("answer", schema)}


def _json_schema_format(name: str, schema: dict) -> dict:
    return {"type": "json_schema", "json_schema": {"name": name, "schema": schema, "strict": True}}


def unwrap(constraint: Constraint, text: str, args: dict) -> str:
    """The answer itself: a choice asked for as `{"label": ...}` comes back as the bare label."""
    if constraint.kind == "choice" and "response_format" in args:
        try:
            value = json.loads(text)
        except ValueError:
            return text
        if isinstance(value, dict) and isinstance(value.get(CHOICE_KEY), str):
            return value[CHOICE_KEY]
    return text


def violation(constraint: Constraint, text: str) -> str | None:
    """Why `text` breaks the constraint, or None when it keeps it.

    The pattern and the schema are the user's: they are matched under the same time and size bound as
    every other user pattern (issue 11: a catastrophic regex must not hold the server).
    """
    from ladder.pipelines import patterns, schema_check

    if constraint.kind == "choice":
        ok = text in constraint.choices
        return None if ok else f"the answer must be exactly one of: {', '.join(constraint.choices)}"
    if constraint.kind == "regex":
        try:
            ok = patterns.Budget().fullmatch(constraint.pattern, text) is not None
        except patterns.PatternLimitExceeded as e:
            return f"the answer could not be checked against the pattern: {e}"
        return None if ok else f"the answer must match the pattern {constraint.pattern}"
    try:
        value = json.loads(text)
    except (ValueError, RecursionError) as e:
        return f"the answer must be JSON, and it is not ({e})"
    why = schema_check.first_error(constraint.schema, value)
    return None if why is None else f"the answer's JSON breaks its schema {why}"


def correction(constraint: Constraint, why: str) -> str:
    """What the retry tells the model about its first answer."""
    if constraint.kind == "json_schema":
        return f"{why}. Answer again with JSON only, valid against this schema: {constraint.schema_text}"
    return f"{why}. Answer again with that and nothing else."
