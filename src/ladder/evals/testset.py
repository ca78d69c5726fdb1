"""Test sets: chat JSONL (the last assistant message is the reference) or input/expected columns."""

from __future__ import annotations

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
        return {"messages": self.messages, "reference": self.reference, "sources": self.sources, "line": self.line}


def _split(messages: list[dict]) -> tuple[list[dict], str]:
    last = max(i for i, m in enumerate(messages) if m["role"] == "assistant")
    return [{"role": m["role"], "content": m["content"]} for m in messages[:last]], messages[last]["content"]


def _pick(cols: list[str], wanted: tuple[str, ...]) -> str | None:
    low = {c.lower(): c for c in cols}
    return next((low[w] for w in wanted if w in low), None)


def _csv_columns(source: Path | bytes) -> list[str]:
    import csv
    import io

    from ladder.data.boundedjson import BOM

    with io.BytesIO(source) if isinstance(source, bytes) else open(source, "rb") as f:
        head = f.readline(1 << 20).removeprefix(BOM).decode("utf-8", errors="replace")
    return next(csv.reader(io.StringIO(head)), [])


def read_test_set(
    source: str | Path | bytes,
    *,
    name: str | None = None,
    input_col: str | None = None,
    output_col: str | None = None,
    limit: int | None = None,
) -> list[TestItem]:
    """Every test item of a file (a path, or bytes with their `name`); raises DatasetError naming each bad line."""
    from ladder.data.boundedjson import read_jsonl
    from ladder.errors import InvalidInput
    from ladder.store.files import check_size

    if isinstance(source, bytes):
        if name is None:
            raise ValueError("read_test_set(bytes) needs the file's name")
        check_size(len(source), name, param="test")
    else:
        source = Path(source)
        name = name or str(source)
        if not source.is_file():
            raise InvalidInput(f"{name}: no such file", code="file_not_found", param="test")
        check_size(source.stat().st_size, name, param="test")
    if Path(name).suffix.lower() in (".csv", ".tsv"):
        if not (input_col and output_col):
            cols = _csv_columns(source)
            input_col = input_col or _pick(cols, INPUT_COLS)
            output_col = output_col or _pick(cols, OUTPUT_COLS)
        examples, problems = parse_dataset(source, name=name, input_col=input_col, output_col=output_col)
        sources: dict[int, list[str]] = {}
    else:
        records, problems, sources = [], [], {}
        for item in read_jsonl(source):
            line, obj = item.line, item.value
            if item.error is not None:
                problems.append(Problem(line, "", item.error, item.hint))
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
        if not records and not problems:
            problems.append(Problem(0, "", "the file has no test items", "add one JSON object per line"))
    errors = [q for q in problems if q.severity == "error"]
    if errors:
        raise DatasetError(name, sorted(errors, key=lambda q: q.line), param="test_file")
    items = []
    for ex in examples:
        msgs, ref = _split(ex.messages)
        items.append(TestItem(msgs, ref.strip(), sources.get(ex.line, []), ex.line))
    return items[:limit] if limit else items


def check_test_file(file_id: str, project_id: str, param: str = "test_file", **columns) -> None:
    """Read an uploaded test set by id now, so a bad one is a 400 naming the user's file, not a failed task."""
    from ladder.errors import LadderError
    from ladder.store.files import resolve_file

    rec = resolve_file(file_id, project_id, param)
    try:
        read_test_set(rec.local_path(), name=rec.filename, **columns)
    except LadderError as e:  # a problem of this file: the request field that named it is the one to fix
        e.param = param
        raise


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
