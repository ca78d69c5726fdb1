"""`response_format` of a chat request as the pipelines' output contract (the one the bots and evals use too)."""

from __future__ import annotations

from ladder.pipelines.output_contract import (
    InvalidModelOutput,
    OutputContract,
    check_json,
    extract,
    from_response_format,
)
from ladder.server.schemas import ResponseFormat

__all__ = ["InvalidModelOutput", "check", "contract_of", "extract"]


def contract_of(rf: ResponseFormat | None) -> OutputContract | None:
    """The contract asked for (its schema checked to be a valid schema), None for text."""
    if rf is None:
        return None
    schema = rf.json_schema.schema_ if rf.json_schema is not None else None
    return from_response_format(rf.type, schema)


def check(text: str, schema: dict) -> tuple[str | None, str]:
    """(canonical JSON text or None, why it failed)."""
    return check_json(text, schema)
