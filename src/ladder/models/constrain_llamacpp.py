"""GBNF grammars for llama.cpp from a `Constraint`: labels as literal alternatives, schemas via llama-cpp-python."""

from __future__ import annotations

from ladder.errors import InvalidInput
from ladder.models.constraints import Constraint

# What a GBNF string literal must escape; every other character, unicode included, stands for itself.
_GBNF_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def gbnf_literal(text: str) -> str:
    """`text` as a GBNF string literal matching exactly its characters."""
    return '"' + "".join(_GBNF_ESCAPES.get(ch, ch) for ch in text) + '"'


# Keywords llama-cpp-python's converter drops without a word (its grammar bounds digits, not
# values): a schema that needs them would decode to JSON that fails it, so it is refused instead.
UNENFORCED = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf")
_SUBSCHEMA_MAPS = ("properties", "patternProperties", "$defs", "definitions", "dependentSchemas")
_SUBSCHEMA = ("items", "additionalProperties", "not", "contains", "if", "then", "else", "propertyNames")
_SUBSCHEMA_LISTS = ("anyOf", "oneOf", "allOf", "prefixItems")


def unenforced_keywords(schema: object, where: str = "schema") -> list[str]:
    """Where in `schema` a keyword the converter ignores appears, as `schema.properties.age.minimum`."""
    if not isinstance(schema, dict):
        return []
    found = [f"{where}.{k}" for k in UNENFORCED if k in schema]
    for key in _SUBSCHEMA_MAPS:
        for name, sub in (schema.get(key) or {}).items() if isinstance(schema.get(key), dict) else ():
            found += unenforced_keywords(sub, f"{where}.{key}.{name}")
    for key in _SUBSCHEMA:
        found += unenforced_keywords(schema.get(key), f"{where}.{key}")
    for key in _SUBSCHEMA_LISTS:
        for i, sub in enumerate(schema.get(key) or []) if isinstance(schema.get(key), list) else ():
            found += unenforced_keywords(sub, f"{where}.{key}[{i}]")
    return found


def _json_chars(grammar: str) -> str:
    """Keep raw control characters out of JSON strings, which JSON forbids.

    llama-cpp-python's string rule admits any character but `"` and `\\` (a sampled U+0002 made
    `json.loads` fail here); llama.cpp's own converter has since excluded U+0000-U+001F and U+007F.
    """
    return "\n".join(
        line.replace('[^"\\\\]', '[^"\\\\\\x7F\\x00-\\x1F]', 1) if line.startswith("char ::= ") else line
        for line in grammar.split("\n")
    )


def gbnf(constraint: Constraint) -> str:
    """The grammar text (root rule `root`) that admits exactly what the constraint allows."""
    if constraint.kind == "choice":
        return "root ::= " + " | ".join(gbnf_literal(c) for c in constraint.choices)
    if constraint.kind == "json_schema":
        from llama_cpp.llama_grammar import json_schema_to_gbnf

        unenforced = unenforced_keywords(constraint.schema)
        if unenforced:
            raise InvalidInput(
                f"{', '.join(unenforced)}: the llama.cpp backend cannot bound numbers in its grammar; "
                "drop the bound or serve the model with backend torch",
                param="schema",
            )
        try:
            text = json_schema_to_gbnf(constraint.schema_text)
        except Exception as e:  # the converter raises KeyError/ValueError/AssertionError on what it cannot map
            raise InvalidInput(f"the JSON schema has no llama.cpp grammar: {e!r}", param="schema") from e
        return _json_chars(text)
    # llama-cpp-python converts a regex only inside a JSON string (quoted) and through a private
    # method; a raw regex is left to the torch backend rather than built on that.
    raise InvalidInput(
        "regex constraints are not supported by the llama.cpp backend; serve the model with backend torch",
        param="pattern",
    )
