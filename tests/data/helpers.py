"""Small dataset writers shared by the data tests."""

from __future__ import annotations

import json
from pathlib import Path


def chat(user: str, answer: str, **extra) -> dict:
    return {"messages": [{"role": "user", "content": user}, {"role": "assistant", "content": answer, **extra}]}


def write_jsonl(path: Path, rows: list) -> Path:
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n")
    return path


def labelled(n: int, labels: tuple[str, ...] = ("billing", "shipping", "refund"), start: int = 0) -> list[dict]:
    """n distinct classification examples cycling through labels."""
    words = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet"]
    rows = []
    for i in range(start, start + n):
        text = f"ticket {i}: {words[i % 10]} {words[(i // 10) % 10]} {words[(i // 100) % 10]} question {i * 7919}"
        rows.append(chat(text, labels[i % len(labels)]))
    return rows
