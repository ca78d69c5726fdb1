"""Output parsers: free text, one label of a label set, JSON valid against a schema, or a regex."""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field

import regex

from ladder.errors import InvalidInput
from ladder.models.constraints import Constraint
from ladder.pipelines import patterns, schema_check

log = logging.getLogger("ladder.pipelines")
KINDS = ("text", "label", "json", "regex")


def normalise(text: str) -> str:
    """Case, whitespace, underscores/hyphens and surrounding punctuation do not change a label."""
    t = str(text).strip().lower().replace("_", " ").replace("-", " ")
    t = re.sub(r"\s+", " ", t)
    return t.strip(" .,:;!?\"'`*")


@dataclass
class ParserSpec:
    """How a pipeline's raw output becomes a value, and when it counts as well-formed."""

    kind: str = "text"
    labels: list[str] = field(default_factory=list)
    schema: dict | None = None
    pattern: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise InvalidInput(f"parser must be one of {', '.join(KINDS)}, not {self.kind!r}", param="parser")
        if self.kind == "label" and not self.labels:
            raise InvalidInput("a label parser needs its label set (--labels a,b,c)", param="labels")
        if self.kind == "label":
            for i, label in enumerate(self.labels):
                if not isinstance(label, str) or not label.strip():
                    # A label is decoded and scored as its own tokens: an empty one cannot be either.
                    raise InvalidInput(f"labels[{i}] must be non-empty text, not {str(label)[:40]!r}", param="labels")
        if self.kind == "json" and self.schema is not None:
            schema_check.check_schema(self.schema, param="schema")
        if self.kind == "regex":
            if not self.pattern:
                raise InvalidInput("a regex parser needs a pattern", param="pattern")
            patterns.compile_pattern(self.pattern, param="pattern", flags=regex.S)

    def as_dict(self) -> dict:
        return {"kind": self.kind, "labels": list(self.labels), "schema": self.schema, "pattern": self.pattern}

    @property
    def closed(self) -> bool:
        """A closed format can be enforced while decoding; free text cannot."""
        return self.kind != "text"

    def constraint(self) -> Constraint | None:
        """The decoding constraint that makes every output parse as valid (None for free text)."""
        if self.kind == "label":
            return Constraint.choice(self.labels)  # the exact label strings, nothing lenient
        if self.kind == "json":
            return Constraint.json_schema(self.schema)
        if self.kind == "regex":
            return Constraint.regex(self.pattern or "")
        return None

    def parse(self, text: str) -> tuple[object, bool]:
        """(parsed value, valid). Valid means the output is exactly in the required format.

        A label output that is not exactly a label but names one (e.g. "Category: billing.")
        is still parsed to that label - accuracy counts it - but it is not format-compliant.
        """
        if self.kind == "text":
            return text.strip(), True
        if self.kind == "label":
            return parse_label(text, self.labels)
        if self.kind == "json":
            return parse_json(text, self.schema)
        return parse_regex(text, self.pattern or "")


def parse_regex(text: str, pattern: str) -> tuple[str | None, bool]:
    """The first group (or the whole match): valid when the pattern matches the whole output.

    A pattern that runs past its time bound on this output counts as not matching.
    """
    budget = patterns.Budget()
    try:
        m = budget.fullmatch(pattern, text.strip(), flags=regex.S)
        if m:
            return (m.group(1) if m.groups() else m.group(0)), True
        m = budget.search(pattern, text, flags=regex.S)
    except patterns.PatternLimitExceeded as e:
        log.warning("regex parser: %s", e)
        return None, False
    return ((m.group(1) if m.groups() else m.group(0)) if m else None), False


def parse_label(text: str, labels: list[str]) -> tuple[str | None, bool]:
    by_norm = {normalise(label): label for label in labels}
    first_line = text.strip().splitlines()[0] if text.strip() else ""
    n = normalise(first_line)
    if n in by_norm:
        return by_norm[n], True
    # Lenient: the label named earliest in the output (longest first, so "card" loses to "card arrival").
    whole = " " + re.sub(r"[^a-z0-9 ]", " ", normalise(text)) + " "
    whole = re.sub(r"\s+", " ", whole)
    best: tuple[int, int, str] | None = None
    for norm, label in by_norm.items():
        pos = whole.find(" " + re.sub(r"[^a-z0-9 ]", " ", norm) + " ")
        if pos >= 0 and (best is None or (pos, -len(norm)) < (best[0], best[1])):
            best = (pos, -len(norm), label)
    return (best[2] if best else None), False


_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.S)


def parse_json(text: str, schema: dict | None) -> tuple[object, bool]:
    """Valid when the whole output (or one fenced block that is the whole output) is schema-valid JSON."""
    raw = text.strip()
    fenced = _FENCE.fullmatch(raw)
    candidates = [(raw, True)] + ([(fenced.group(1), True)] if fenced else [])
    start, end = raw.find("{"), raw.rfind("}")
    if 0 <= start < end:
        candidates.append((raw[start : end + 1], False))
    for c, whole in candidates:
        try:
            value = json.loads(c)
        except (ValueError, RecursionError):  # RecursionError: nested deeper than the decoder goes
            continue
        if schema is not None:
            why = schema_check.first_error(schema, value)
            if why is not None:
                log.info("json parser: the output is not valid against the schema %s", why)
                return value, False
        return value, whole
    return None, False
