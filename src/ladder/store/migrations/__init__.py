"""Numbered SQL migrations, one folder per engine (sqlite/, postgresql/).

Append-only: never edit a released file, add the next number. A change to the data both engines hold
adds the same number to both folders; the knowledge-base indexes differ (FTS5, its lengths and a float32
blob on SQLite; tsvector, pgvector and kb_terms on PostgreSQL), so their migrations are one engine's.
"""

from __future__ import annotations

import sqlite3
from importlib import resources


def migrations(engine: str) -> list[tuple[int, str, str]]:
    """(number, name, sql) for every `NNNN_name.sql` of one engine's folder, in order."""
    found = []
    for entry in resources.files(f"ladder.store.migrations.{engine}").iterdir():
        name = entry.name
        if name.endswith(".sql") and name[:4].isdigit():
            found.append((int(name[:4]), name[5:-4], entry.read_text(encoding="utf-8")))
    found.sort()
    numbers = [n for n, _, _ in found]
    if len(set(numbers)) != len(numbers):
        raise RuntimeError(f"two {engine} migrations share a number: {numbers}")
    return found


def split_sql(sql: str) -> list[str]:
    """Statements of a SQLite migration file (split where sqlite3 says a statement is complete)."""
    statements, current = [], ""
    for line in sql.splitlines(keepends=True):
        current += line
        if sqlite3.complete_statement(current):
            if current.strip():
                statements.append(current.strip())
            current = ""
    if current.strip():
        statements.append(current.strip())
    return statements
