"""What a decoding constraint says (one label of a set, JSON valid against a schema, a regex), backend-neutral.

A `Constraint` travels on `GenerationParams`; each backend compiles it with its own engine
(llama.cpp grammars, a structured-generation library for torch, `response_format`/guided
decoding for remote endpoints) and caches the compiled form keyed by the constraint, which is
why it is frozen and hashable (the schema is kept as JSON text).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Literal

from ladder.errors import InvalidInput

Kind = Literal["choice", "json_schema", "regex"]


@dataclass(frozen=True)
class Constraint:
    kind: Kind
    choices: tuple[str, ...] = ()
    # The schema as JSON text, keys in the order given: a grammar emits properties in schema order,
    # and that order is part of what is asked for (say, a "reason" before an "answer").
    schema_text: str | None = None
    pattern: str | None = None

    def __post_init__(self) -> None:
        if self.kind == "choice" and not self.choices:
            raise InvalidInput("a choice constraint needs at least one choice", param="labels")
        if self.kind == "json_schema" and self.schema_text is None:
            raise InvalidInput("a json_schema constraint needs a schema", param="schema")
        if self.kind == "regex" and not self.pattern:
            raise InvalidInput("a regex constraint needs a pattern", param="pattern")

    @classmethod
    def choice(cls, labels: list[str] | tuple[str, ...]) -> Constraint:
        return cls("choice", choices=tuple(dict.fromkeys(labels)))

    @classmethod
    def json_schema(cls, schema: dict | None) -> Constraint:
        """`None` or `{}` means any JSON object (OpenAI's json_object mode)."""
        return cls("json_schema", schema_text=json.dumps(schema or {"type": "object"}, ensure_ascii=False))

    @classmethod
    def regex(cls, pattern: str) -> Constraint:
        return cls("regex", pattern=pattern)

    @property
    def schema(self) -> dict | None:
        return json.loads(self.schema_text) if self.schema_text is not None else None
