"""Dataset statistics: sizes, roles, lengths, and the label distribution when outputs are labels."""

from __future__ import annotations

import statistics
from collections import Counter
from pathlib import Path

from ladder.data.formats import Example, label_of, read_dataset

MAX_LABEL_CHARS = 60
MAX_LABEL_WORDS = 6


def label_counts(examples: list[Example]) -> dict[str, int] | None:
    """Counts per output label (most common first) when the outputs look like labels, else None.

    Outputs look like labels when they are short (a few words) and repeat: fewer distinct
    values than half the examples, so free-text answers are not mistaken for classes.
    """
    labels = [label_of(e).strip() for e in examples]
    if len(labels) < 2:
        return None
    if any(len(x) > MAX_LABEL_CHARS or len(x.split()) > MAX_LABEL_WORDS for x in labels):
        return None
    counts = Counter(labels)
    if len(counts) > max(2, len(labels) // 2):
        return None
    return dict(counts.most_common())


def _summary(values: list[int]) -> dict:
    if not values:
        return {"min": 0, "median": 0, "mean": 0.0, "max": 0}
    return {
        "min": min(values),
        "median": statistics.median(values),
        "mean": round(statistics.fmean(values), 1),
        "max": max(values),
    }


def stats_of(examples: list[Example], *, model: str | None = None) -> dict:
    """Counts and length summaries of examples; token lengths too when `model` is given."""
    roles = Counter(m["role"] for e in examples for m in e.messages)
    systems = Counter(m["content"] for e in examples for m in e.messages if m["role"] == "system")
    by_role = {
        role: _summary([len(m["content"].split()) for e in examples for m in e.messages if m["role"] == role])
        for role in roles
    }
    out = {
        "examples": len(examples),
        "messages": sum(roles.values()),
        "messages_per_example": _summary([len(e.messages) for e in examples]),
        "roles": dict(roles),
        "words_by_role": by_role,
        "distinct_system_prompts": len(systems),
        "multi_turn_examples": sum(sum(m["role"] == "assistant" for m in e.messages) > 1 for e in examples),
        "labels": label_counts(examples),
    }
    if model is not None:
        from ladder.data.tokens import count_tokens

        counts = count_tokens(examples, model)
        out["tokens"] = {
            "tokenizer": counts.tokenizer,
            "per_example": _summary(counts.total),
            "total": sum(counts.total),
            "trained_total": sum(counts.trained),
        }
    return out


def stats(
    path: str | Path,
    *,
    input_col: str | None = None,
    output_col: str | None = None,
    system: str | None = None,
    model: str | None = None,
) -> dict:
    """Statistics of a dataset file (any accepted format)."""
    examples = read_dataset(path, input_col=input_col, output_col=output_col, system=system)
    return {"path": str(path), **stats_of(examples, model=model)}
