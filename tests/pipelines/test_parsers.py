"""Output parsers: what counts as a label, valid JSON, a regex match."""

import pytest

from ladder.errors import InvalidInput
from ladder.pipelines.parsers import ParserSpec, normalise

LABELS = ["card_arrival", "card", "exchange_rate"]


def test_normalise_ignores_case_whitespace_and_separators():
    assert normalise("  Card_Arrival. ") == normalise("card arrival") == "card arrival"


@pytest.mark.parametrize(
    "text,parsed,valid",
    [
        ("card_arrival", "card_arrival", True),
        ("Card Arrival.", "card_arrival", True),
        ("The category is card arrival, I think", "card_arrival", False),  # longest label wins over "card"
        ("card", "card", True),
        ("no idea", None, False),
        ("", None, False),
    ],
)
def test_label_parser_strict_format_lenient_value(text, parsed, valid):
    assert ParserSpec("label", labels=LABELS).parse(text) == (parsed, valid)


def test_json_parser_validates_schema_and_whole_output():
    schema = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}
    p = ParserSpec("json", schema=schema)
    assert p.parse('{"name": "Ada"}') == ({"name": "Ada"}, True)
    assert p.parse('```json\n{"name": "Ada"}\n```') == ({"name": "Ada"}, True)
    assert p.parse('Sure! {"name": "Ada"} hope that helps') == ({"name": "Ada"}, False)
    assert p.parse('{"name": 3}') == ({"name": 3}, False)
    assert p.parse("not json") == (None, False)


def test_regex_parser_and_bad_specs():
    assert ParserSpec("regex", pattern=r"#(\d+)").parse("#42") == ("42", True)
    assert ParserSpec("regex", pattern=r"#(\d+)").parse("order #42 please") == ("42", False)
    with pytest.raises(InvalidInput, match="label set"):
        ParserSpec("label")
    with pytest.raises(InvalidInput, match="regex"):
        ParserSpec("regex", pattern="(")
    with pytest.raises(InvalidInput, match="parser must be"):
        ParserSpec("yaml")
    with pytest.raises(InvalidInput, match="not a valid JSON Schema"):
        ParserSpec("json", schema={"type": 12})
