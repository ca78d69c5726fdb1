"""The general regression set shipped with the project, as test items (for the forgetting check)."""

from __future__ import annotations

from pathlib import Path

from ladder.evals.testset import TestItem


def _item(n: int, x) -> TestItem | None:
    if isinstance(x, TestItem):
        return x
    if hasattr(x, "messages"):
        x = {"messages": x.messages}
    if isinstance(x, (tuple, list)) and len(x) == 2:
        x = {"input": x[0], "expected": x[1]}
    if not isinstance(x, dict):
        return None
    if "messages" in x:
        msgs = x["messages"]
        last = max((i for i, m in enumerate(msgs) if m["role"] == "assistant"), default=None)
        if last is None:
            return None
        return TestItem([dict(m) for m in msgs[:last]], msgs[last]["content"], [], n + 1)
    q = x.get("input") or x.get("prompt") or x.get("question")
    a = x.get("expected") or x.get("output") or x.get("answer") or x.get("completion")
    if q is None or a is None:
        return None
    return TestItem([{"role": "user", "content": str(q)}], str(a), [], n + 1)


def regression_items(limit: int | None = 40) -> list[TestItem]:
    """The shipped set (empty when the samples part does not provide one)."""
    try:
        from ladder.samples import regression_set
    except ImportError:
        return []
    found = regression_set()
    if isinstance(found, (str, Path)):
        from ladder.evals.testset import read_test_set

        items = read_test_set(found)
    else:
        items = [i for n, x in enumerate(found) if (i := _item(n, x)) is not None]
    return items[:limit] if limit else items
