"""JSON Schema checks of user schemas and of model output, every user pattern run through the bounded matcher.

jsonschema matches `pattern`, `patternProperties` and `additionalProperties` (which looks at the
pattern properties) with `re`, which holds the interpreter while a catastrophic pattern backtracks.
`BoundedValidator` is Draft 2020-12 with those three keywords matched by `patterns.Budget`: a
pattern that runs past its bound makes the value invalid, with the reason, instead of hanging.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextvars import ContextVar
from decimal import Decimal, InvalidOperation

import jsonschema
from jsonschema import ValidationError, validators

from ladder.errors import InvalidInput
from ladder.pipelines.patterns import Budget, PatternLimitExceeded, compile_pattern

# The budget of the check in progress, read by the keyword functions below (jsonschema gives them
# no other way to share it); set only for the span of one `first_error` call.
_budget: ContextVar[Budget | None] = ContextVar("ladder_pattern_budget", default=None)


def _current() -> Budget:
    return _budget.get() or Budget()


def _clip(value: str) -> str:
    return value if len(value) <= 80 else value[:80] + "…"


def _pattern(validator, patrn, instance, schema) -> Iterator[ValidationError]:
    if not validator.is_type(instance, "string"):
        return
    try:
        if _current().search(patrn, instance) is None:
            yield ValidationError(f"{_clip(instance)!r} does not match {patrn!r}")
    except PatternLimitExceeded as e:
        yield ValidationError(str(e))


def _pattern_properties(validator, pattern_properties, instance, schema) -> Iterator[ValidationError]:
    if not validator.is_type(instance, "object"):
        return
    budget = _current()
    for pattern, subschema in pattern_properties.items():
        for key, value in instance.items():
            try:
                hit = budget.search(pattern, key)
            except PatternLimitExceeded as e:
                yield ValidationError(f"property {_clip(key)!r}: {e}", path=[key])
                continue
            if hit:
                yield from validator.descend(value, subschema, path=key, schema_path=pattern)


def _additional_properties(validator, additional, instance, schema) -> Iterator[ValidationError]:
    """jsonschema's own keyword, with the pattern-properties test bounded."""
    if not validator.is_type(instance, "object"):
        return
    budget = _current()
    properties = schema.get("properties", {})
    patterns = list(schema.get("patternProperties", {}))
    extras = []
    for key in instance:
        if key in properties:
            continue
        try:
            if any(budget.search(p, key) for p in patterns):
                continue
        except PatternLimitExceeded as e:
            yield ValidationError(f"property {_clip(key)!r}: {e}", path=[key])
            continue
        extras.append(key)
    if validator.is_type(additional, "object"):
        for key in extras:
            yield from validator.descend(instance[key], additional, path=key)
    elif not additional and extras:
        shown = ", ".join(repr(_clip(k)) for k in sorted(extras)[:20])
        if patterns:
            verb = "does" if len(extras) == 1 else "do"
            yield ValidationError(f"{shown} {verb} not match any of the regexes: {', '.join(map(repr, patterns))}")
        else:
            yield ValidationError(f"Additional properties are not allowed ({shown} unexpected)")


_FLOAT_MULTIPLE_OF = jsonschema.Draft202012Validator.VALIDATORS["multipleOf"]


def _multiple_of(validator, multiple, instance, schema) -> Iterator[ValidationError]:
    """`multipleOf` in decimal, as the JSON text reads and as the decoding constraint enforces it.

    jsonschema divides floats, so 0.3 is "not a multiple of 0.1" and a constrained answer would fail
    its own check. `repr` of a float is the shortest decimal that reads back as it: the JSON's digits.
    """
    if not validator.is_type(instance, "number"):
        return
    try:
        rest = Decimal(repr(instance)) % Decimal(repr(multiple))
    except (InvalidOperation, ValueError):  # inf/nan, or a quotient too large for the context
        yield from _FLOAT_MULTIPLE_OF(validator, multiple, instance, schema)
        return
    if rest != 0:
        yield ValidationError(f"{instance!r} is not a multiple of {multiple!r}")


BoundedValidator = validators.extend(
    jsonschema.Draft202012Validator,
    {
        "pattern": _pattern,
        "patternProperties": _pattern_properties,
        "additionalProperties": _additional_properties,
        "multipleOf": _multiple_of,
    },
)


def _schema_formats() -> jsonschema.FormatChecker:
    """Checks a schema's own patterns with the matcher's compiler (the `regex` dialect, size-bounded)."""
    checker = jsonschema.FormatChecker(formats=())
    checker.checks("regex", raises=InvalidInput)(
        lambda value: not isinstance(value, str) or bool(compile_pattern(value))
    )
    return checker


def _walk(node: object) -> Iterator[dict]:
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            yield item
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def check_schema(schema: object, *, param: str) -> dict:
    """The schema, when it is a valid Draft 2020-12 JSON Schema whose patterns compile; else InvalidInput."""
    if not isinstance(schema, dict | bool):
        raise InvalidInput(f"{param} must be a JSON Schema object, not {type(schema).__name__}", param=param)
    try:
        meta = jsonschema.Draft202012Validator(
            jsonschema.Draft202012Validator.META_SCHEMA, format_checker=_schema_formats()
        )
        error = jsonschema.exceptions.best_match(meta.iter_errors(schema))
    except RecursionError as e:
        raise InvalidInput(f"{param} is nested too deeply to be a JSON Schema", param=param) from e
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path)
        # A pattern refused by the compiler says why itself; the metaschema's message would repeat it whole.
        detail = error.cause.message if isinstance(error.cause, InvalidInput) else error.message[:300]
        raise InvalidInput(
            f"{param} is not a valid JSON Schema{' at ' + where if where else ''}: {detail}", param=param
        )
    nodes = list(_walk(schema))
    # jsonschema's unevaluatedProperties re-matches patternProperties with `re`, outside any bound.
    if any(isinstance(n.get("patternProperties"), dict) for n in nodes) and any(
        "unevaluatedProperties" in n for n in nodes
    ):
        raise InvalidInput(
            f"{param}: unevaluatedProperties together with patternProperties is not supported; "
            "use additionalProperties",
            param=param,
        )
    return schema


def _path_order(error: ValidationError) -> list[tuple[bool, object]]:
    # Errors nearest the root first; keys and indices never meet at one level, the flag keeps them apart.
    return [(isinstance(p, str), p) for p in error.path]


def first_error(schema: dict, value: object, budget: Budget | None = None) -> str | None:
    """Why `value` is not valid against `schema` ("at a/b: message"), or None when it is."""
    token = _budget.set(budget or Budget())
    try:
        errors = sorted(BoundedValidator(schema).iter_errors(value), key=_path_order)
    except RecursionError:
        return "the value is nested too deeply to check"
    finally:
        _budget.reset(token)
    if not errors:
        return None
    where = "/".join(str(p) for p in errors[0].path) or "(root)"
    return f"at {where}: {errors[0].message[:200]}"
