"""Training-data formats: read chat JSONL, prompt/completion JSONL or column CSV/JSONL into one chat form."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from ladder.errors import InvalidInput

ROLES = ("system", "user", "assistant")
# OpenAI's chat fine-tuning format; tool-calling fields are not trained by ladder, so they are refused.
MESSAGE_KEYS = ("role", "content", "weight", "name")
RECORD_KEYS = ("messages",)
MAX_SHOWN = 20
# Characters of problems listed in a DatasetError's message (then "and K more"): under the HTTP
# layer's cut (server/errors.py MAX_MESSAGE), so the count and the tail are never lost.
MESSAGE_CHARS = 1800


@dataclass
class Problem:
    """One thing wrong (or worth a look) in a dataset: where, which field, what, and what to do."""

    line: int  # 1-based source line (CSV: the line the row starts on); 0 = the file as a whole
    field: str  # e.g. "messages[2].role"; "" when the whole line is at fault
    message: str
    hint: str = ""
    severity: str = "error"  # "error" | "warning"
    code: str = ""  # a stable word for the kind of problem (warnings are grouped by it)

    def __str__(self) -> str:
        where = f"line {self.line}" if self.line else "file"
        if self.field:
            where += f", {self.field}"
        return f"{where}: {self.message}" + (f" ({self.hint})" if self.hint else "")

    def as_dict(self) -> dict:
        return {
            "line": self.line,
            "field": self.field,
            "message": self.message,
            "hint": self.hint,
            "severity": self.severity,
            "code": self.code,
        }


class DatasetError(InvalidInput):
    """A dataset has problems; `.problems` lists all of them, the message counts them and shows the first.

    The message is the same from the CLI and over HTTP (where messages are cut at 500 characters),
    so it always fits: the count, as many problems as fit, then "and K more".
    """

    def __init__(
        self, name: str | Path, problems: list[Problem], *, param: str = "training_file", see_all: bool = True
    ):
        self.path = str(name)
        self.problems = problems
        errors = [p for p in problems if p.severity == "error"] or problems
        n = len(errors)
        head = f"{_clip(self.path, 120)}: {n} problem{'s' if n != 1 else ''}:"
        shown: list[str] = []
        used = len(head)
        for p in errors[:MAX_SHOWN]:
            line = "\n  " + _clip(str(p), 200)
            if shown and used + len(line) > MESSAGE_CHARS:
                break
            shown.append(line)
            used += len(line)
        tail = ""
        if n > len(shown):
            tail = f"\n  ... and {n - len(shown)} more"
            if see_all:
                tail += f" (`ladder data validate {_clip(self.path, 120)}` lists all)"
        super().__init__(head + "".join(shown) + tail, code="invalid_dataset", param=param)


def _clip(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def _key(k: object) -> str:
    """A user's key as shown in a message: quoted and bounded (a key may be megabytes long)."""
    return repr(_clip(str(k), 40))


@dataclass
class Example:
    """One training example in OpenAI chat form; `line` is where it came from in the source file."""

    messages: list[dict]
    line: int = 0
    meta: dict = field(default_factory=dict, compare=False, repr=False)

    def as_dict(self) -> dict:
        return {"messages": self.messages}


def label_of(example: Example) -> str:
    """The final assistant message's content (the answer, or the label for classification)."""
    for m in reversed(example.messages):
        if m.get("role") == "assistant":
            return m.get("content") or ""
    return ""


def prompt_of(example: Example) -> str:
    """The last user message before the final answer (the input, for column-style data)."""
    for m in reversed(example.messages):
        if m.get("role") == "user":
            return m.get("content") or ""
    return ""


def _blank(v) -> bool:
    return not isinstance(v, str) or not v.strip()


def _chat(obj: dict, line: int, system: str | None, problems: list[Problem]) -> Example | None:
    start = len(problems)
    for k in obj:
        if k not in RECORD_KEYS:
            problems.append(
                Problem(
                    line,
                    _clip(str(k), 40),
                    f"unknown key {_key(k)}",
                    "a chat example has only a `messages` key; remove the others",
                )
            )
    msgs = obj.get("messages")
    if not isinstance(msgs, list) or not msgs:
        problems.append(
            Problem(
                line,
                "messages",
                "`messages` must be a non-empty list of messages",
                'write {"messages": [{"role": "user", "content": ...}, {"role": "assistant", "content": ...}]}',
            )
        )
        return None
    out: list[dict] = []
    for i, m in enumerate(msgs):
        f = f"messages[{i}]"
        if not isinstance(m, dict):
            problems.append(
                Problem(line, f, "each message must be a JSON object", 'write {"role": ..., "content": ...}')
            )
            continue
        for k in m:
            if k not in MESSAGE_KEYS:
                problems.append(
                    Problem(
                        line,
                        f"{f}.{_clip(str(k), 40)}",
                        f"unknown key {_key(k)} in a message",
                        f"allowed keys: {', '.join(MESSAGE_KEYS)}; tool calls are not supported",
                    )
                )
        role = m.get("role")
        if role not in ROLES:
            problems.append(
                Problem(
                    line,
                    f"{f}.role",
                    "missing role" if role is None else f"unknown role {_key(role)}",
                    f"use one of {', '.join(ROLES)}",
                )
            )
        content = m.get("content")
        if content is None or (isinstance(content, str) and not content.strip()):
            problems.append(Problem(line, f"{f}.content", "empty content", "every message needs text"))
        elif not isinstance(content, str):
            problems.append(
                Problem(
                    line,
                    f"{f}.content",
                    f"content must be a string, not {type(content).__name__}",
                    "write the message text as a JSON string",
                )
            )
        msg = {"role": role, "content": content}
        if "weight" in m:
            w = m["weight"]
            if role != "assistant":
                problems.append(
                    Problem(
                        line,
                        f"{f}.weight",
                        f"weight on a {role!r} message",
                        "weight is only allowed on assistant messages; remove it",
                    )
                )
            elif isinstance(w, bool) or w not in (0, 1):
                problems.append(
                    Problem(
                        line,
                        f"{f}.weight",
                        f"weight must be 0 or 1, not {_key(w)}",
                        "0 = do not train on this message, 1 = train on it",
                    )
                )
            else:
                msg["weight"] = int(w)
        out.append(msg)
    if not any(isinstance(m, dict) and m.get("role") == "assistant" for m in msgs):
        problems.append(
            Problem(
                line,
                "messages",
                "no assistant message",
                "add at least one assistant message: that is what the model learns to write",
            )
        )
    if len(problems) > start:
        return None
    if system and out[0]["role"] != "system":
        out.insert(0, {"role": "system", "content": system})
    return Example(out, line)


def _pair(
    prompt, completion, line: int, names: tuple[str, str], system: str | None, problems: list[Problem]
) -> Example | None:
    ok = True
    for value, name in ((prompt, names[0]), (completion, names[1])):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            continue
        if value is None or _blank(value):
            kind = (
                "missing"
                if value is None
                else ("empty" if isinstance(value, str) else f"not text ({type(value).__name__})")
            )
            problems.append(Problem(line, name, f"{name} is {kind}", f"give every row a non-empty {name}"))
            ok = False
    if not ok:
        return None
    msgs = [{"role": "system", "content": system}] if system else []
    msgs += [
        {"role": "user", "content": str(prompt).strip()},
        {"role": "assistant", "content": str(completion).strip()},
    ]
    return Example(msgs, line)


def examples_from_records(
    records: Iterable[tuple[int, object]],
    *,
    input_col: str | None = None,
    output_col: str | None = None,
    system: str | None = None,
) -> tuple[list[Example], list[Problem]]:
    """Normalise (line, record) pairs to chat examples; returns the examples and every problem found.

    A record is chat form if it has `messages`, prompt/completion form if it has `prompt`;
    with `input_col`/`output_col` given, those columns are used instead.
    """
    examples: list[Example] = []
    problems: list[Problem] = []
    for line, obj in records:
        if not isinstance(obj, dict):
            problems.append(
                Problem(line, "", f"expected a JSON object, got {type(obj).__name__}", "write one JSON object per line")
            )
            continue
        if input_col or output_col:
            missing = [c for c in (input_col, output_col) if c and c not in obj]
            if missing or not (input_col and output_col):
                have = _clip(", ".join(map(str, obj)), 120) or "none"
                what = f"no column {_key(missing[0])}" if missing else "both --input-col and --output-col are needed"
                problems.append(Problem(line, missing[0] if missing else "", what, f"columns here: {have}"))
                continue
            ex = _pair(obj[input_col], obj[output_col], line, (input_col, output_col), system, problems)
        elif "messages" in obj:
            ex = _chat(obj, line, system, problems)
        elif "prompt" in obj or "completion" in obj:
            extra = [k for k in obj if k not in ("prompt", "completion")]
            for k in extra:
                problems.append(
                    Problem(
                        line,
                        _clip(str(k), 40),
                        f"unknown key {_key(k)}",
                        "a prompt/completion example has only `prompt` and `completion`",
                    )
                )
            ex = _pair(obj.get("prompt"), obj.get("completion"), line, ("prompt", "completion"), system, problems)
            ex = None if extra else ex
        else:
            have = _clip(", ".join(map(str, obj)), 120) or "none"
            problems.append(
                Problem(
                    line,
                    "messages",
                    "missing `messages`",
                    f'keys here: {have}; write chat form {{"messages": [...]}}, '
                    "prompt/completion, or name the columns with --input-col/--output-col",
                )
            )
            continue
        if ex is not None:
            examples.append(ex)
    return examples, problems


def _is_csv(name: str) -> bool:
    return Path(name).suffix.lower() in (".csv", ".tsv")


def parse_dataset(
    source: str | Path | bytes,
    *,
    name: str | None = None,
    input_col: str | None = None,
    output_col: str | None = None,
    system: str | None = None,
) -> tuple[list[Example], list[Problem]]:
    """Read a dataset without raising on bad lines: the examples that parsed and every problem.

    `source` is a path or an upload's bytes; `name` is what messages call it and whose extension
    picks the format (default: the path itself). The size is checked before anything is read.
    """
    from ladder.data.readers import csv_records, jsonl_records  # they build Problems: import here, not above
    from ladder.store.files import check_size

    if isinstance(source, bytes):
        if name is None:
            raise ValueError("parse_dataset(bytes) needs the file's name")
        check_size(len(source), name)
    else:
        source = Path(source)
        name = name or str(source)
        if not source.is_file():
            raise InvalidInput(f"{name}: no such file", code="file_not_found", param="file")
        check_size(source.stat().st_size, name)
    problems: list[Problem] = []
    if _is_csv(name):
        records = csv_records(source, problems, tsv=Path(name).suffix.lower() == ".tsv")
        if records and not (input_col or output_col):
            cols = list(records[0][1])
            if "prompt" in cols and "completion" in cols:
                input_col, output_col = "prompt", "completion"
            else:
                problems.append(
                    Problem(
                        0,
                        "",
                        "a CSV needs its input and output columns named",
                        f"pass --input-col and --output-col; columns: {_clip(', '.join(cols), 200)}",
                    )
                )
                return [], problems
    else:
        records = jsonl_records(source, problems)
    examples, more = examples_from_records(records, input_col=input_col, output_col=output_col, system=system)
    problems += more
    if not examples and not problems:
        problems.append(Problem(0, "", "the file has no examples", "add one example per line"))
    problems.sort(key=lambda q: q.line)
    return examples, problems


def read_dataset(
    source: str | Path | bytes,
    *,
    name: str | None = None,
    input_col: str | None = None,
    output_col: str | None = None,
    system: str | None = None,
) -> list[Example]:
    """All examples of a dataset in chat form; raises DatasetError listing every problem if a line is bad."""
    examples, problems = parse_dataset(source, name=name, input_col=input_col, output_col=output_col, system=system)
    errors = [q for q in problems if q.severity == "error"]
    if errors:
        raise DatasetError(name or str(source), errors)
    return examples


def write_jsonl(examples: Iterable[Example | dict], path: str | Path) -> Path:
    """Write examples as OpenAI chat JSONL atomically (a temporary file, then rename)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(f".{p.name}.tmp-{os.getpid()}")
    with open(tmp, "w", encoding="utf-8") as f:
        for ex in examples:
            obj = ex.as_dict() if isinstance(ex, Example) else ex
            f.write(json.dumps(obj, ensure_ascii=False) + "\n")
    os.replace(tmp, p)
    return p
