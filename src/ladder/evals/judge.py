"""LLM-as-judge: any registered model rates each answer against the reference on a 1-5 rubric."""

from __future__ import annotations

import re

from ladder.models import service
from ladder.models.types import ChatRequest
from ladder.store.db import DEFAULT_PROJECT

RUBRIC = (
    "You grade answers. Compare the ANSWER with the REFERENCE for the QUESTION. Score 5 if it says the "
    "same thing correctly and completely, 3 if partly right, 1 if wrong or off-topic. Reply with only the "
    "score, a single digit from 1 to 5."
)


def judge_rows(
    model: str, rows: list[dict], *, rubric: str = RUBRIC, batch_size: int = 8, project_id: str = DEFAULT_PROJECT
) -> None:
    """Adds `judge` to every row: 0..1 from a 1-5 score, None when the judge's reply holds no score.

    An unreadable reply says nothing about the answer, so it is missing (left out of the mean and
    counted by `missing`), never a 0 that would read as the lowest grade.
    """
    reqs = [
        ChatRequest.of(
            [
                {"role": "system", "content": rubric},
                {
                    "role": "user",
                    "content": f"QUESTION: {r['input']}\nREFERENCE: {r['reference']}\nANSWER: {r['output']}\nSCORE:",
                },
            ],
            max_tokens=4,
        )
        for r in rows
    ]
    for start in range(0, len(reqs), batch_size):
        resps = service.chat_batch(model, reqs[start : start + batch_size], project_id=project_id, source="judge")
        for r, resp in zip(rows[start : start + batch_size], resps, strict=True):
            r["judge"] = grade(resp.text)


def grade(reply: str) -> float | None:
    """0..1 from the first standalone digit 1-5 of the judge's reply; None when there is none."""
    m = re.search(r"(?<![0-9])[1-5](?![0-9])", reply)
    return (int(m.group(0)) - 1) / 4 if m else None


def missing(rows: list[dict]) -> int:
    """How many rows the judge gave no grade."""
    return sum(1 for r in rows if "judge" in r and r["judge"] is None)
