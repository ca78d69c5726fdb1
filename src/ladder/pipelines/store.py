"""All the SQL of the `bots` table: one row per version of a bot, never updated in place."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

from ladder.errors import Conflict
from ladder.store.db import get_db


@dataclass(frozen=True)
class BotRow:
    """One stored version of a bot: its settings as saved (checked again when loaded)."""

    id: str
    project_id: str
    name: str
    version: int
    config: dict
    created_at: float

    @classmethod
    def from_row(cls, row) -> BotRow:
        return cls(
            row["id"], row["project_id"], row["name"], row["version"], json.loads(row["config"]), row["created_at"]
        )


def _insert(conn, bot_id: str, project_id: str, name: str, version: int, config: dict) -> None:
    conn.execute(
        "INSERT INTO bots(id, project_id, name, version, config, created_at) VALUES (?,?,?,?,?,?)",
        (bot_id, project_id, name, version, json.dumps(config), time.time()),
    )


def insert_first(bot_id: str, project_id: str, name: str, config: dict) -> None:
    """Version 1 of a new bot; Conflict when the project has a bot of that name."""
    with get_db().tx() as conn:
        if conn.execute("SELECT 1 FROM bots WHERE project_id=? AND name=?", (project_id, name)).fetchone():
            raise Conflict(f"a bot named {name!r} already exists; use `ladder bots edit {name}` to change it")
        _insert(conn, bot_id, project_id, name, 1, config)


def insert_next(current: BotRow, config: dict) -> int:
    """The bot's next version (one past its highest, read in the same transaction); returns its number."""
    with get_db().tx() as conn:
        top = conn.execute(
            "SELECT MAX(version) FROM bots WHERE project_id=? AND name=?", (current.project_id, current.name)
        ).fetchone()[0]
        _insert(conn, current.id, current.project_id, current.name, top + 1, config)
    return top + 1


def find(project_id: str, name_or_id: str, version: int | None = None) -> BotRow | None:
    """A version of the bot named (or with the `bot-…` id), the latest unless one is given."""
    col = "id" if name_or_id.startswith("bot-") else "name"
    sql = f"SELECT * FROM bots WHERE project_id=? AND {col}=?"
    params: tuple = (project_id, name_or_id)
    if version is not None:
        sql += " AND version=?"
        params += (version,)
    row = get_db().one(sql + " ORDER BY version DESC LIMIT 1", params)
    return BotRow.from_row(row) if row is not None else None


def names(project_id: str) -> list[str]:
    rows = get_db().query("SELECT DISTINCT name FROM bots WHERE project_id=? ORDER BY name", (project_id,))
    return [r["name"] for r in rows]


def latest_of_each(project_id: str) -> list[BotRow]:
    """The latest version of every bot of the project, by name."""
    rows = get_db().query(
        "SELECT b.* FROM bots b JOIN (SELECT name, MAX(version) AS v FROM bots WHERE project_id=? GROUP BY name)"
        " m ON b.name=m.name AND b.version=m.v WHERE b.project_id=? ORDER BY b.name",
        (project_id, project_id),
    )
    return [BotRow.from_row(r) for r in rows]


def versions(project_id: str, name: str) -> list[BotRow]:
    rows = get_db().query("SELECT * FROM bots WHERE project_id=? AND name=? ORDER BY version", (project_id, name))
    return [BotRow.from_row(r) for r in rows]


def delete(project_id: str, name: str) -> bool:
    """Every version of the bot; False when there was none."""
    return get_db().execute("DELETE FROM bots WHERE project_id=? AND name=?", (project_id, name)).rowcount > 0
