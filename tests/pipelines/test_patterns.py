"""The bounded matcher: catastrophic patterns stop at their bound, ordinary ones match exactly as `re` does."""

from __future__ import annotations

import re
import time

import pytest

from ladder.errors import InvalidInput
from ladder.pipelines import patterns, schema_check
from ladder.pipelines.parsers import ParserSpec
from ladder.server import jsonformat

HOSTILE = [
    (r"(.+)+Z", "a" * 40),
    (r"(a|aa)+$", "a" * 60 + "!"),
    (r"(a*)*b", "a" * 60),
    (r"^(\w+\s?)*$", "a" * 60 + "!"),
    (r"(x+x+)+y", "x" * 60),
    (r"^(([a-z])+.)+[A-Z]([a-z])+$", "a" * 60),
]


@pytest.mark.parametrize("pattern,text", HOSTILE)
def test_catastrophic_patterns_end_within_the_bound(pattern, text):
    t0 = time.perf_counter()
    assert ParserSpec("regex", pattern=pattern).parse(text) == (None, False)
    # two matches (whole output, then anywhere), each cut at MATCH_SECONDS, under one CHECK_SECONDS budget
    assert time.perf_counter() - t0 < patterns.CHECK_SECONDS + 0.3


@pytest.mark.parametrize(
    "pattern,text",
    [
        (r"#(\d+)", "order #42 please"),
        (r"(?i)refund", "REFUND now"),
        (r"^\w+@\w+\.com$", "ada@example.com"),
        (r"(\d{4})-(\d{2})", "on 2024-05-01"),
        (r"[^\x00-\x7f]+", "naïve café"),
        (r"^$", ""),
    ],
)
def test_ordinary_patterns_match_as_re_does(pattern, text):
    budget = patterns.Budget()
    for method in ("search", "fullmatch"):
        ours, theirs = getattr(budget, method)(pattern, text, re.S), getattr(re, method)(pattern, text, re.S)
        assert (ours and (ours.group(0), ours.groups())) == (theirs and (theirs.group(0), theirs.groups()))


def test_one_budget_bounds_many_matches():
    budget = patterns.Budget(0.3)
    t0 = time.perf_counter()
    timeouts = 0
    for _ in range(20):  # 20 x MATCH_SECONDS would be 2 s without the shared budget
        with pytest.raises(patterns.PatternLimitExceeded):
            budget.search(r"(a|aa)+$", "a" * 60 + "!")
        timeouts += 1
    assert timeouts == 20 and time.perf_counter() - t0 < 0.6


def test_sizes_are_bounded_and_bad_patterns_named():
    with pytest.raises(patterns.PatternLimitExceeded, match="at most"):
        patterns.Budget().search("a", "a" * (patterns.MAX_SUBJECT_CHARS + 1))
    with pytest.raises(InvalidInput, match="at most") as e:
        ParserSpec("regex", pattern="a" * (patterns.MAX_PATTERN_CHARS + 1))
    assert e.value.param == "pattern"
    with pytest.raises(InvalidInput, match="not a valid regex") as e:
        patterns.compile_pattern("(", param="parser.pattern")
    assert e.value.param == "parser.pattern"


def test_schema_patterns_are_bounded_with_a_reason():
    for schema, value in [
        ({"properties": {"v": {"type": "string", "pattern": "(a|aa)+$"}}}, {"v": "a" * 60 + "!"}),
        ({"patternProperties": {"(a|aa)+$": {"type": "string"}}}, {"a" * 60 + "!": "x"}),
        ({"patternProperties": {"(a|aa)+$": {}}, "additionalProperties": False}, {"a" * 60 + "!": 1}),
        ({"propertyNames": {"pattern": "(a|aa)+$"}}, {"a" * 60 + "!": 1}),
    ]:
        t0 = time.perf_counter()
        why = schema_check.first_error(schema, value)
        assert why is not None and "longer than" in why, (schema, why)
        assert time.perf_counter() - t0 < patterns.CHECK_SECONDS + 0.3
    text, why = jsonformat.check('{"v": "' + "a" * 60 + '!"}', {"properties": {"v": {"pattern": "(a|aa)+$"}}})
    assert text is None and "longer than" in why


def test_schema_patterns_still_validate_ordinary_values():
    schema = {
        "type": "object",
        "properties": {"id": {"type": "string", "pattern": "^[A-Z]{3}-\\d+$"}},
        "patternProperties": {"^x-": {"type": "integer"}},
        "additionalProperties": False,
    }
    assert schema_check.first_error(schema, {"id": "ABC-12", "x-n": 3}) is None
    assert "does not match" in schema_check.first_error(schema, {"id": "abc"})
    assert "not of type" in schema_check.first_error(schema, {"x-n": "3"})
    assert "does not match any of the regexes" in schema_check.first_error(schema, {"other": 1})
    assert "not allowed" in schema_check.first_error({"additionalProperties": False}, {"other": 1})


def test_user_schemas_are_checked_when_given():
    for bad, expect in [
        ({"type": 12}, "not a valid JSON Schema"),
        ({"properties": {"v": {"pattern": "("}}}, "not a valid regex"),
        ({"patternProperties": {"(": {}}}, "not a valid regex"),
        ({"patternProperties": {"a": {}}, "unevaluatedProperties": False}, "not supported"),
        ([], "must be a JSON Schema object"),
    ]:
        with pytest.raises(InvalidInput, match=expect) as e:
            schema_check.check_schema(bad, param="response_format.json_schema.schema")
        assert e.value.param == "response_format.json_schema.schema"


def test_model_output_that_breaks_the_decoder_is_just_invalid():
    assert ParserSpec("json", schema={"type": "object"}).parse("[" * 100_000) == (None, False)
    assert jsonformat.check("[" * 100_000, {"type": "object"})[0] is None
    assert jsonformat.check('{"n": ' + "1" * 5000 + "}", {})[0] is None
    deep = {"a": [[[[[]]]]]}
    for _ in range(400):
        deep = {"a": deep}
    assert "nested too deeply" in (schema_check.first_error({"properties": {"a": {"$ref": "#"}}}, deep) or "")
