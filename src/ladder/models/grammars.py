"""llguidance grammars for a `Constraint`, shared by the torch and llama.cpp backends (no torch import).

Labels are the token sequences the model's tokenizer gives each label (llguidance's `<[id]>`
tokens): a grammar over the label strings would also let decoding spell a label with other
tokens ("activ" + "ate" for "activate"), while the label probabilities are computed on the
canonical tokens, so this keeps what is decoded and what is scored the same
(label_scores.greedy_choice). JSON follows the schema in one fixed layout; a regex is itself.

What llguidance cannot enforce (`uniqueItems`, `contains`, `not`, `dependentRequired`,
`unevaluatedProperties`, an unknown `format`, a look-around in a `pattern`) is refused as
InvalidInput, a schema's naming the subschema (`schema.properties.tags: ...`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from ladder.errors import InvalidInput
from ladder.models.constraints import Constraint

# JSON as Python's json.dumps writes it (", " and ": "), the form fine-tuning data is written in,
# and no free whitespace: a sampling model would otherwise spend its tokens on blanks.
JSON_LAYOUT = {"whitespace_flexible": False, "item_separator": ", ", "key_separator": ": "}
PARAM = {"choice": "labels", "json_schema": "schema", "regex": "pattern"}


def grammar_text(constraint: Constraint, encode: Callable[[str], list[int]]) -> str:
    """The llguidance grammar for a constraint; `encode` gives a label's tokens (no special tokens)."""
    import llguidance

    if constraint.kind == "choice":
        alternatives = (" ".join(f"<[{t}]>" for t in encode(c)) for c in constraint.choices)
        return llguidance.grammar_from("lark", "start: " + " | ".join(alternatives))
    if constraint.kind == "json_schema":
        return llguidance.LLMatcher.grammar_from_json_schema(constraint.schema_text, defaults=JSON_LAYOUT)
    return llguidance.grammar_from("regex", constraint.pattern)


_SUBSCHEMA_MAPS = ("properties", "patternProperties", "$defs", "definitions", "dependentSchemas")
_SUBSCHEMA = ("items", "additionalProperties", "not", "contains", "if", "then", "else", "propertyNames")
_SUBSCHEMA_LISTS = ("anyOf", "oneOf", "allOf", "prefixItems")
# Subschemas tried one by one to find where a refused schema fails; past this the root is named.
_PLACES_TRIED = 200


def _subschemas(schema: object, where: str = "schema") -> Iterator[tuple[str, dict]]:
    """Every object subschema with its place (`schema.properties.age`), parents before children."""
    if not isinstance(schema, dict):
        return
    yield where, schema
    for key in _SUBSCHEMA_MAPS:
        if isinstance(schema.get(key), dict):
            for name, sub in schema[key].items():
                yield from _subschemas(sub, f"{where}.{key}.{name}")
    for key in _SUBSCHEMA:
        yield from _subschemas(schema.get(key), f"{where}.{key}")
    for key in _SUBSCHEMA_LISTS:
        if isinstance(schema.get(key), list):
            for i, sub in enumerate(schema[key]):
                yield from _subschemas(sub, f"{where}.{key}[{i}]")


def _refusal(tokenizer, constraint: Constraint, encode=None) -> str | None:
    """Why llguidance cannot enforce the constraint (None: it can)."""
    import llguidance

    try:
        return llguidance.LLMatcher.validate_grammar(grammar_text(constraint, encode), tokenizer) or None
    except Exception as e:  # the schema text is not a schema llguidance reads at all
        return str(e) or repr(e)


def _place(tokenizer, schema: object, error: str) -> str:
    """The deepest subschema refused on its own with the same error: where the cause is.

    llguidance's messages say what (`Unimplemented keys: ["contains"]`) but not where. A subschema
    that only fails apart from its root (a `$ref` into the root's `$defs`) fails differently and is
    passed over.
    """
    place = "schema"
    for i, (where, sub) in enumerate(_subschemas(schema)):
        if i >= _PLACES_TRIED:
            break
        inside = where.startswith(place + ".") or where.startswith(place + "[")
        if inside and _refusal(tokenizer, Constraint.json_schema(sub)) == error:
            place = where
    return place


def compile_matcher(tokenizer, constraint: Constraint, encode: Callable[[str], list[int]]):
    """The compiled llguidance matcher for a constraint; InvalidInput saying what cannot be held, and where.

    `tokenizer`: llguidance's view of the model's vocabulary; `encode` gives a label's tokens.
    """
    import llguidance

    error = _refusal(tokenizer, constraint, encode)
    if error and constraint.kind == "json_schema":
        where = _place(tokenizer, constraint.schema, error)
        raise InvalidInput(f"{where}: the JSON schema cannot be enforced: {error.strip()}", param="schema")
    if error:
        raise InvalidInput(
            f"the {constraint.kind} constraint cannot be enforced: {error.strip()}", param=PARAM[constraint.kind]
        )
    return llguidance.LLMatcher(tokenizer, grammar_text(constraint, encode), log_level=0)
