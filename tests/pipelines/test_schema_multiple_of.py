"""`multipleOf` is checked in decimal, as JSON reads it and as the decoding constraint enforces it."""

import pytest

from ladder.pipelines.schema_check import first_error


@pytest.mark.parametrize(
    ("value", "multiple"), [(0.3, 0.1), (1.15, 0.01), (0.7, 0.1), (-2.25, 0.25), (3, 1.5), (10, 5), (0, 0.1)]
)
def test_decimal_multiples_pass(value, multiple):
    assert first_error({"type": "number", "multipleOf": multiple}, value) is None


@pytest.mark.parametrize(("value", "multiple"), [(1.155, 0.01), (0.35, 0.1), (4, 1.5), (7, 5)])
def test_values_off_the_grid_fail_with_the_numbers_named(value, multiple):
    error = first_error({"type": "number", "multipleOf": multiple}, value)
    assert error is not None and f"{value!r} is not a multiple of {multiple!r}" in error


def test_non_numbers_are_left_to_the_type_keyword():
    assert "is not of type" in first_error({"type": "number", "multipleOf": 0.1}, "0.3")
    assert first_error({"multipleOf": 0.1}, "0.3") is None
