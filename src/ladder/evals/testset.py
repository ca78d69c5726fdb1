"""Test sets: chat JSONL (the last assistant message is the reference) or input/expected columns."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from ladder.data.formats import DatasetError, Problem, examples_from_records, parse_dataset

# Columns tried, in order, when a file names no input/expected columns.
INPUT_COLS = ("input", "text", "question", "prompt", "instruction")
OUTPUT_COLS = ("expected", "output", "label", "category", "answer", "completion", "response")
SOURCE_KEYS = ("sources", "source")


@dataclass
class TestItem:
    """One test case: the conversation up to the answer, the reference answer, the source docs if named."""

    messages: list[dict]
    reference: str
    sources: list[str] = field(default_factory=list)
    line: int = 0

    @property
    def input(self) -> str:
        return next((m["content"] for m in reversed(self.messages) if m["role"] == "user"), "")

    def as_dict(self) -> dict:
        return {"messages": self.messages, "reference": self.reference, "sources": self.sources,
                "line": self.line}


def _split(messages: list[dict]) -> tuple[list[dict], str]:
    last = max(i for i, m in enumerate(messages) if m["role"] == "assistant")
    return [{"role": m["role"], "content": m["content"]} for m in messages[:last]], messages[last]["content"]


def _pick(cols: list[str], wanted: tuple[str, ...]) -> str | None:
    low = {c.lower(): c for c in cols}
    return next((low[w] for w in wanted if w in low), None)


def read_test_set(path: str | Path, *, input_col: str | None = None, output_col: str | None = None,
                  limit: int | None = None) -> list[TestItem]:
    """Every test item of a file; raises DatasetError naming each bad line."""
    p = Path(path)
    if p.suffix.lower() in (".csv", ".tsv"):
        if not (input_col and output_col):
            import csv

            with open(p, encoding="utf-8-sig", newline="") as f:
                cols = next(csv.reader(f), [])
            input_col = input_col or _pick(cols, INPUT_COLS)
            output_col = output_col or _pick(cols, OUTPUT_COLS)
        examples, problems = parse_dataset(p, input_col=input_col, output_col=output_col)
        sources: dict[int, list[str]] = {}
    else:
        from ladder.errors import InvalidInput

        if not p.is_file():
            raise InvalidInput(f"{p}: no such file", code="file_not_found", param="test")
        records, problems, sources = [], [], {}
        for line, raw in enumerate(p.read_text(encoding="utf-8-sig").splitlines(), start=1):
            if not raw.strip():
                continue
            try:
                obj = json.loads(raw)
            except json.JSONDecodeError as e:
                problems.append(Problem(line, "", f"invalid JSON: {e.msg} at column {e.colno}",
                                        "each line must be one complete JSON object"))
                continue
            if isinstance(obj, dict):
                for k in SOURCE_KEYS:
                    if k in obj:
                        v = obj.pop(k)
                        sources[line] = [str(x) for x in (v if isinstance(v, list) else [v])]
                if "messages" not in obj and not (input_col or output_col):
                    ic, oc = _pick(list(obj), INPUT_COLS), _pick(list(obj), OUTPUT_COLS)
                    if ic and oc:
                        obj = {"prompt": obj[ic], "completion": obj[oc]}
            records.append((line, obj))
        examples, more = examples_from_records(records, input_col=input_col, output_col=output_col)
        problems += more
    errors = [q for q in problems if q.severity == "error"]
    if errors:
        raise DatasetError(p, errors)
    items = []
    for ex in examples:
        msgs, ref = _split(ex.messages)
        items.append(TestItem(msgs, ref.strip(), sources.get(ex.line, []), ex.line))
    return items[:limit] if limit else items


def spread(items: list, n: int | None) -> list:
    """n items spread evenly over the list (files are often grouped by label, so the head would not do)."""
    if not n or n >= len(items):
        return items
    step = len(items) / n
    return [items[int(i * step)] for i in range(n)]


def items_from_pairs(pairs: list[tuple[str, str]], system: str | None = None) -> list[TestItem]:
    """Test items from (input, expected) pairs, e.g. a shipped sample."""
    pre = [{"role": "system", "content": system}] if system else []
    return [TestItem(pre + [{"role": "user", "content": i}], o, [], n + 1) for n, (i, o) in enumerate(pairs)]
