"""Bounded JSON for user files: one line-splitting rule, and limits on line length, nesting and numbers.

Every JSON or JSON Lines read of user data goes through here, so the CLI, the upload check and job
creation agree on which line is which and refuse the same bombs with the same words:

- lines end at `\\n` only (JSON Lines' rule); a `\\r` before it is dropped, a UTF-8 BOM at the start of
  the file is skipped, and U+2028, U+2029 or U+0085 inside a line are ordinary characters;
- a line longer than `max_json_line_bytes` is refused without being held in memory;
- nesting deeper than MAX_DEPTH, integers longer than MAX_INT_DIGITS, NaN/Infinity, numbers that
  overflow a float, duplicate keys and lone surrogate escapes (`\\ud800`) are refused by name.
"""

from __future__ import annotations

import codecs
import io
import json
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

MAX_DEPTH = 64
# Python's own limit for int(str) (sys.get_int_max_str_digits); a longer integer would otherwise
# surface as a bare ValueError from inside the json module.
MAX_INT_DIGITS = 4300
BOM = codecs.BOM_UTF8
_SURROGATE = re.compile("[\ud800-\udfff]")
# A JSON escape of a UTF-16 surrogate (\uD800-\uDFFF): only then can a parsed string hold one,
# since the text itself was decoded as strict UTF-8.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


class JsonProblem(ValueError):
    """Why one JSON text was refused, in words for the user (the caller adds the file and line)."""

    DEFAULT_HINT = "each line must be one complete JSON object"

    def __init__(self, message: str, hint: str = DEFAULT_HINT):
        super().__init__(message)
        self.hint = hint


_TOO_DEEP = (f"nested deeper than {MAX_DEPTH} levels", "flatten the structure")
_SURROGATE_HINT = "a lone surrogate is not a character: write the character itself, or a valid pair"
_CONTROL_HINT = "a NUL or other control character inside a string must be escaped (\\u0000) or removed"


def _show(text: str, n: int = 40) -> str:
    return repr(text[:n] + ("…" if len(text) > n else ""))


def _int(digits: str) -> int:
    n = len(digits) - digits.startswith("-")
    if n > MAX_INT_DIGITS:
        raise JsonProblem(f"an integer of {n:,} digits (at most {MAX_INT_DIGITS:,})", "write long numbers as strings")
    return int(digits)


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise JsonProblem(f"the number {_show(text, 20)} is out of range", "write it as a string")
    return value


def _constant(name: str) -> float:
    raise JsonProblem(f"{name} is not JSON", "write a number, null, or a string")


def _object(pairs: list[tuple[str, object]]) -> dict:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        dup = next(k for k, _ in pairs if k in seen or seen.add(k))
        raise JsonProblem(f"the key {_show(dup)} appears twice in one object", "keep one of them")
    return obj


def _check_tree(value: object, text: str) -> None:
    """Depth and lone surrogates, walked without recursion and only when the text could hold them."""
    deep = text.count("[") + text.count("{") > MAX_DEPTH
    strings = _SURROGATE_ESCAPE.search(text) is not None
    if not (deep or strings):
        return
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        v, depth = stack.pop()
        if isinstance(v, dict | list):
            if depth > MAX_DEPTH:
                raise JsonProblem(*_TOO_DEEP)
            items = v.items() if isinstance(v, dict) else enumerate(v)
            for k, x in items:
                if strings and isinstance(k, str) and _SURROGATE.search(k):
                    raise JsonProblem("a key holds a lone surrogate escape (like \\ud800)", _SURROGATE_HINT)
                stack.append((x, depth + 1))
        elif strings and isinstance(v, str) and _SURROGATE.search(v):
            raise JsonProblem("a string holds a lone surrogate escape (like \\ud800)", _SURROGATE_HINT)


def loads(text: str) -> object:
    """json.loads under the bounds above; JsonProblem (never another error) when the text is refused."""
    try:
        value = json.loads(
            text, parse_int=_int, parse_float=_float, parse_constant=_constant, object_pairs_hook=_object
        )
    except json.JSONDecodeError as e:
        msg = e.msg.removesuffix(" at")  # "Invalid control character at": the column follows
        hint = _CONTROL_HINT if msg.startswith("Invalid control character") else JsonProblem.DEFAULT_HINT
        raise JsonProblem(f"invalid JSON: {msg} at column {e.colno}", hint) from None
    except RecursionError:
        # The C scanner stops at the interpreter's recursion limit; anything that deep is over ours.
        raise JsonProblem(*_TOO_DEEP) from None
    _check_tree(value, text)
    return value


def decode_line(raw: bytes) -> str:
    """One line's bytes as text; JsonProblem naming the byte when it is not UTF-8."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise JsonProblem(
            f"not valid UTF-8 ({e.reason} at byte {e.start + 1} of the line)", "save the file as UTF-8"
        ) from None


def _skip_rest(f: BinaryIO) -> int:
    n = 0
    while chunk := f.readline(1 << 20):
        n += len(chunk)
        if chunk.endswith(b"\n"):
            break
    return n


def iter_lines(f: BinaryIO, max_line_bytes: int) -> Iterator[tuple[int, bytes | int]]:
    """(line number, the line's bytes) for each line, or (number, its length) for one over the limit.

    An overlong line is counted and skipped, never held whole in memory.
    """
    number = 0
    while raw := f.readline(max_line_bytes + 2):  # + 2: room for "\r\n" after a line at the limit
        number += 1
        if number == 1 and raw.startswith(BOM):
            raw = raw[len(BOM) :]
        ended = raw.endswith(b"\n")
        if not ended and len(raw) >= max_line_bytes + 2:
            yield number, len(raw) + _skip_rest(f)
            continue
        body = raw[:-1] if ended else raw
        if body.endswith(b"\r"):
            body = body[:-1]
        yield number, (len(body) if len(body) > max_line_bytes else body)


@dataclass
class JsonLine:
    """One non-blank line: its 1-based number and either its value or why it was refused."""

    line: int
    value: object = None
    error: str | None = None
    hint: str = ""


def line_limit() -> int:
    from ladder.settings import get_settings

    return get_settings().max_json_line_bytes


def read_jsonl(source: str | Path | bytes, *, max_line_bytes: int | None = None) -> Iterator[JsonLine]:
    """Every non-blank line of a JSON Lines file (a path) or upload (bytes), parsed under the bounds."""
    limit = max_line_bytes or line_limit()
    with io.BytesIO(source) if isinstance(source, bytes) else open(source, "rb") as f:
        for number, raw in iter_lines(f, limit):
            if isinstance(raw, int):
                yield JsonLine(
                    number,
                    error=f"the line is {raw:,} bytes, over the limit of {limit:,} bytes",
                    hint="one example per line; a longer one needs LADDER_MAX_JSON_LINE_BYTES",
                )
                continue
            try:
                text = decode_line(raw)
                if not text.strip(" \t"):
                    continue  # blank lines (a trailing newline, a separator) carry nothing
                yield JsonLine(number, loads(text))
            except JsonProblem as e:
                yield JsonLine(number, error=str(e), hint=e.hint)
