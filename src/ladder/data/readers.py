"""Line-numbered readers for JSONL and CSV/TSV data (a path or uploaded bytes): records with their line."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from ladder.data.boundedjson import BOM, read_jsonl
from ladder.data.formats import Problem


def jsonl_records(source: Path | bytes, problems: list[Problem]) -> list[tuple[int, object]]:
    """(line, value) of each JSON line; each refused line (bad UTF-8 or JSON, a bomb) becomes a Problem."""
    records = []
    for item in read_jsonl(source):
        if item.error is None:
            records.append((item.line, item.value))
        else:
            problems.append(Problem(item.line, "", item.error, item.hint))
    return records


def csv_records(source: Path | bytes, problems: list[Problem], *, tsv: bool = False) -> list[tuple[int, object]]:
    """(line the row starts on, {column: cell}) of each non-blank row after the header."""
    raw = source if isinstance(source, bytes) else source.read_bytes()  # size checked by the caller
    try:
        text = raw.removeprefix(BOM).decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        problems.append(Problem(line, "", f"not valid UTF-8 ({e.reason})", "save the file as UTF-8"))
        return []
    # newline="": the csv module itself splits rows at \n, \r\n or \r, never at U+2028 or U+0085.
    reader = csv.reader(io.StringIO(text, newline=""), delimiter="\t" if tsv else ",")
    try:
        header = next(reader)
    except StopIteration:
        return []
    except csv.Error as e:
        problems.append(Problem(1, "", f"unreadable CSV header: {e}", "check the quoting on this row"))
        return []
    header = [h.strip() for h in header]
    records = []
    start = reader.line_num + 1
    try:
        for row in reader:
            if any(cell.strip() for cell in row):
                if len(row) != len(header):
                    problems.append(
                        Problem(
                            start,
                            "",
                            f"{len(row)} cells but the header has {len(header)}",
                            "quote cells that contain commas or line breaks",
                        )
                    )
                else:
                    records.append((start, dict(zip(header, row, strict=True))))
            start = reader.line_num + 1
    except csv.Error as e:
        problems.append(Problem(start, "", f"unreadable CSV: {e}", "check the quoting on this row"))
    return records
