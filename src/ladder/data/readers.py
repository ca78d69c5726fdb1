"""Line-numbered readers for JSONL and CSV/TSV files: records with their source line, problems collected."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from ladder.data.formats import Problem


def _decode(raw: bytes, line: int, problems: list[Problem]) -> str | None:
    try:
        return raw.decode("utf-8-sig" if line == 1 else "utf-8")
    except UnicodeDecodeError as e:
        problems.append(Problem(line, "", f"not valid UTF-8 ({e.reason} at byte {e.start})",
                                "save the file as UTF-8"))
        return None


def jsonl_records(path: Path, problems: list[Problem]) -> list[tuple[int, object]]:
    records = []
    with open(path, "rb") as f:
        for line, raw in enumerate(f, start=1):
            text = _decode(raw, line, problems)
            if text is None or not text.strip():
                continue  # blank lines (a trailing newline, a separator) carry no example
            try:
                records.append((line, json.loads(text)))
            except json.JSONDecodeError as e:
                problems.append(Problem(line, "", f"invalid JSON: {e.msg} at column {e.colno}",
                                        "each line must be one complete JSON object"))
    return records


def csv_records(path: Path, problems: list[Problem]) -> list[tuple[int, object]]:
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        problems.append(Problem(line, "", f"not valid UTF-8 ({e.reason})", "save the file as UTF-8"))
        return []
    reader = csv.reader(io.StringIO(text, newline=""), delimiter="\t" if path.suffix.lower() == ".tsv" else ",")
    try:
        header = next(reader)
    except StopIteration:
        return []
    header = [h.strip() for h in header]
    records = []
    start = reader.line_num + 1
    try:
        for row in reader:
            if any(cell.strip() for cell in row):
                if len(row) != len(header):
                    problems.append(Problem(start, "", f"{len(row)} cells but the header has {len(header)}",
                                            "quote cells that contain commas or line breaks"))
                else:
                    records.append((start, dict(zip(header, row, strict=True))))
            start = reader.line_num + 1
    except csv.Error as e:
        problems.append(Problem(start, "", f"unreadable CSV: {e}", "check the quoting on this row"))
    return records
