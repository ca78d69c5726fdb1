"""Distillation helper: run inputs through a teacher model and write chat examples, resumably."""

from __future__ import annotations

import csv
import hashlib
import json
import os
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ladder.data.boundedjson import read_jsonl
from ladder.data.formats import DatasetError, Problem, parse_dataset
from ladder.errors import InvalidInput
from ladder.store.db import DEFAULT_PROJECT
from ladder.store.files import check_size

INPUT_COLUMNS = ("input", "text", "prompt", "question", "query")


@dataclass
class LabelResult:
    total: int  # inputs in the file
    skipped: int  # already in `out` from an earlier run
    written: int  # labelled in this run
    empty: int  # the teacher answered nothing; not written, so a re-run retries them
    out: Path
    truncated: int = 0  # cut off at max_tokens; not written unless keep_truncated (re-run with more tokens)


def _key(messages: list[dict]) -> str:
    return hashlib.sha256(json.dumps(messages, ensure_ascii=False, sort_keys=True).encode()).hexdigest()


def _prompt(messages: list[dict]) -> list[dict]:
    """The messages up to (not including) a trailing assistant answer: what the teacher is shown."""
    msgs = [{"role": m["role"], "content": m["content"]} for m in messages]
    while msgs and msgs[-1]["role"] == "assistant":
        msgs.pop()
    return msgs


def read_inputs(
    path: str | Path, *, system: str | None = None, input_col: str | None = None
) -> list[tuple[int, list[dict]]]:
    """(line, prompt messages) for every input: a text file (one input per line), a CSV or JSONL with an
    input column, or chat JSONL (any trailing assistant answer is dropped and asked again)."""
    p = Path(path)
    if not p.is_file():
        raise InvalidInput(f"{p}: no such file", param="inputs")
    check_size(p.stat().st_size, str(p), param="inputs")
    sys_msg = [{"role": "system", "content": system}] if system else []
    if p.suffix.lower() in (".txt", ".text", ""):
        # One input per \n-ended line, as in JSONL: U+2028 or U+0085 inside a line do not split it.
        lines = p.read_text(encoding="utf-8-sig").split("\n")
        return [(i, [*sys_msg, {"role": "user", "content": t.strip()}]) for i, t in enumerate(lines, 1) if t.strip()]
    records: list[tuple[int, list[dict]]] = []
    problems: list[Problem] = []
    if p.suffix.lower() == ".csv":
        with open(p, encoding="utf-8-sig", newline="") as f:
            reader = csv.DictReader(f)
            cols = reader.fieldnames or []
            col = input_col or next((c for c in INPUT_COLUMNS if c in cols), None)
            if col not in cols:
                raise InvalidInput(
                    f"{p}: no input column {col or ''!r}; columns: {', '.join(cols)}. Pass --input-col",
                    param="input_col",
                )
            start = 2
            for row in reader:
                text = (row.get(col) or "").strip()
                if text:
                    records.append((start, [*sys_msg, {"role": "user", "content": text}]))
                else:
                    problems.append(Problem(start, col, "empty input", "remove the row or fill it in"))
                start = reader.line_num + 1
    else:
        # A bad first line leaves `first` empty: parse_dataset below reports it with its number.
        first = next((x.value for x in read_jsonl(p) if x.error is None), {})
        if isinstance(first, dict) and "messages" in first:
            # Chat JSONL: the answers may be missing or be the ones to replace, so parse leniently.
            examples, problems = _lenient_chat(p, system)
            records = [(line, msgs) for line, msgs in examples]
        else:
            keys = first if isinstance(first, dict) else {}
            col = input_col or next((c for c in INPUT_COLUMNS if c in keys), None)
            if not col:
                raise InvalidInput(f"{p}: cannot tell which field is the input; pass --input-col", param="input_col")
            examples, problems = parse_dataset(p, input_col=col, output_col=col, system=system)
            records = [(e.line, e.messages[:-1]) for e in examples]
    if problems:
        raise DatasetError(p, problems)
    return records


def _lenient_chat(path: Path, system: str | None) -> tuple[list[tuple[int, list[dict]]], list[Problem]]:
    out, problems = [], []
    for item in read_jsonl(path):
        line = item.line
        if item.error is not None:
            problems.append(Problem(line, "", item.error, item.hint))
            continue
        try:
            msgs = _prompt(item.value["messages"])
        except (KeyError, TypeError):
            problems.append(Problem(line, "messages", "not a chat example", 'write {"messages": [...]}'))
            continue
        if not msgs or msgs[-1]["role"] != "user":
            problems.append(
                Problem(
                    line,
                    "messages",
                    "nothing to answer: no user message at the end",
                    "end each example with the user's message",
                )
            )
            continue
        if system and msgs[0]["role"] != "system":
            msgs.insert(0, {"role": "system", "content": system})
        out.append((line, msgs))
    return out, problems


def _done(out: Path) -> Counter:
    """Prompts already labelled in `out`; a half-written last line (a crash mid-write) is cut off."""
    if not out.exists():
        return Counter()
    data = out.read_bytes()
    if data and not data.endswith(b"\n"):
        with open(out, "r+b") as f:
            f.truncate(data.rfind(b"\n") + 1)
        data = data[: data.rfind(b"\n") + 1]
    done: Counter = Counter()
    # split("\n"), not splitlines(): answers may hold U+2028 or U+0085, which we write as is.
    for raw in data.decode("utf-8").split("\n"):
        if raw.strip():
            done[_key(_prompt(json.loads(raw)["messages"]))] += 1
    return done


def label(
    inputs_path: str | Path,
    teacher: str,
    out: str | Path,
    *,
    system: str | None = None,
    input_col: str | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    batch_size: int = 8,
    max_tokens: int = 256,
    temperature: float = 0.0,
    keep_truncated: bool = False,
    project_id: str = DEFAULT_PROJECT,
) -> LabelResult:
    """Answer every input with `teacher` and append `{"messages": [..., assistant]}` lines to `out`.

    Re-running continues where it stopped: inputs already answered in `out` are skipped (each line
    is flushed as soon as it is written). `on_progress(done, total)` is called after each input.
    Answers cut off at `max_tokens` are left out (a student would learn to stop mid-sentence), so a
    re-run with a larger `max_tokens` fills exactly those in; `keep_truncated=True` writes them.
    """
    from ladder.models import service
    from ladder.models.registry import get_model
    from ladder.models.types import ChatRequest

    get_model(teacher, project_id)  # fail before any work when the teacher is unknown
    inputs = read_inputs(inputs_path, system=system, input_col=input_col)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    done = _done(out)
    todo = []
    for line, msgs in inputs:
        k = _key(msgs)
        if done[k] > 0:
            done[k] -= 1  # counted per occurrence, so repeated inputs are each labelled once
        else:
            todo.append((line, msgs))
    result = LabelResult(len(inputs), len(inputs) - len(todo), 0, 0, out)
    progress = result.skipped
    if on_progress:
        on_progress(progress, result.total)
    with open(out, "a", encoding="utf-8") as f:
        for start in range(0, len(todo), max(1, batch_size)):
            batch = todo[start : start + batch_size]
            reqs = [ChatRequest.of(msgs, max_tokens=max_tokens, temperature=temperature) for _, msgs in batch]
            answers = service.chat_batch(teacher, reqs, project_id=project_id, source="label")
            for (_, msgs), resp in zip(batch, answers, strict=True):
                text = resp.text.strip()
                if text and resp.finish_reason == "length" and not keep_truncated:
                    result.truncated += 1
                elif text:
                    f.write(
                        json.dumps({"messages": [*msgs, {"role": "assistant", "content": text}]}, ensure_ascii=False)
                        + "\n"
                    )
                    f.flush()
                    result.written += 1
                else:
                    result.empty += 1
                progress += 1
                if on_progress:
                    on_progress(progress, result.total)
            os.fsync(f.fileno())
    return result
