"""Projects and API keys: keys are random, shown once, stored as sha256, revocable."""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from dataclasses import dataclass

from ladder.errors import Conflict, InvalidInput, NotFound
from ladder.ids import new_id
from ladder.store.db import DEFAULT_PROJECT, Database, get_db

KEY_PREFIX = "sk-ladder-"
PROJECT_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"  # also the API schema's pattern
_PROJECT_NAME = re.compile(PROJECT_NAME_PATTERN)


@dataclass
class ApiKey:
    id: str
    project_id: str
    project_name: str
    name: str
    prefix: str
    admin: bool
    created_at: float
    last_used_at: float | None
    revoked_at: float | None

    def as_dict(self) -> dict:
        return {
            "id": self.id,
            "object": "api_key",
            "project_id": self.project_id,
            "project": self.project_name,
            "name": self.name,
            "prefix": self.prefix,
            "admin": self.admin,
            "created_at": int(self.created_at),
            "revoked": self.revoked_at is not None,
        }


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def project_by_name(name: str, *, create: bool = False, db: Database | None = None) -> str:
    """The id of the project called `name` (created if asked and missing)."""
    db = db or get_db()
    row = db.one("SELECT id FROM projects WHERE name=? OR id=?", (name, name))
    if row is not None:
        return row["id"]
    if not create:
        raise NotFound(f"no project named {name!r}", param="project")
    if not _PROJECT_NAME.match(name):
        raise InvalidInput(f"project name {name!r}: use letters, digits, '.', '_' or '-' (at most 64)", param="project")
    pid = new_id("proj")
    with db.tx() as conn:
        conn.execute("INSERT INTO projects(id, name, created_at) VALUES (?,?,?)", (pid, name, time.time()))
    return pid


def list_projects(db: Database | None = None) -> list[dict]:
    return [dict(r) for r in (db or get_db()).query("SELECT id, name, created_at FROM projects ORDER BY created_at")]


def create_key(
    project: str = "default", *, admin: bool = False, name: str = "", db: Database | None = None
) -> tuple[ApiKey, str]:
    """A new key for `project` (a name, created if missing); returns (record, the secret shown once)."""
    db = db or get_db()
    pid = project_by_name(project, create=True, db=db)
    secret = KEY_PREFIX + secrets.token_urlsafe(32)
    kid = new_id("key")
    now = time.time()
    db.execute(
        "INSERT INTO api_keys(id, project_id, name, prefix, sha256, admin, created_at) VALUES (?,?,?,?,?,?,?)",
        (kid, pid, name, secret[: len(KEY_PREFIX) + 4], _hash(secret), int(admin), now),
    )
    return get_key(kid, db=db), secret


def _rows_to_keys(rows) -> list[ApiKey]:
    return [
        ApiKey(
            r["id"],
            r["project_id"],
            r["project_name"],
            r["name"],
            r["prefix"],
            bool(r["admin"]),
            r["created_at"],
            r["last_used_at"],
            r["revoked_at"],
        )
        for r in rows
    ]


_SELECT = "SELECT k.*, p.name AS project_name FROM api_keys k JOIN projects p ON p.id = k.project_id"


def get_key(key_id: str, db: Database | None = None) -> ApiKey:
    rows = (db or get_db()).query(_SELECT + " WHERE k.id=?", (key_id,))
    if not rows:
        raise NotFound(f"no API key with id {key_id!r}", param="key_id")
    return _rows_to_keys(rows)[0]


def list_keys(
    project_id: str | None = None, *, include_revoked: bool = True, db: Database | None = None
) -> list[ApiKey]:
    sql, args = _SELECT + " WHERE 1=1", []
    if project_id:
        sql += " AND k.project_id=?"
        args.append(project_id)
    if not include_revoked:
        sql += " AND k.revoked_at IS NULL"
    return _rows_to_keys((db or get_db()).query(sql + " ORDER BY k.created_at", tuple(args)))


def revoke_key(key_id_or_prefix: str, db: Database | None = None) -> ApiKey:
    """Revoke by id (`key-…`) or by the displayed prefix when that names exactly one key."""
    db = db or get_db()
    rows = db.query("SELECT id FROM api_keys WHERE id=? OR prefix=?", (key_id_or_prefix, key_id_or_prefix))
    if not rows:
        raise NotFound(f"no API key {key_id_or_prefix!r}; see `ladder keys list`", param="key_id")
    if len(rows) > 1:
        raise Conflict(f"{key_id_or_prefix!r} matches {len(rows)} keys; revoke by id (`ladder keys list`)")
    db.execute("UPDATE api_keys SET revoked_at=? WHERE id=? AND revoked_at IS NULL", (time.time(), rows[0]["id"]))
    return get_key(rows[0]["id"], db=db)


def authenticate(secret: str, db: Database | None = None) -> ApiKey | None:
    """The live key matching `secret`, or None (unknown or revoked)."""
    if not secret or not secret.startswith(KEY_PREFIX) or len(secret) > 200:
        return None
    rows = (db or get_db()).query(_SELECT + " WHERE k.sha256=? AND k.revoked_at IS NULL", (_hash(secret),))
    return _rows_to_keys(rows)[0] if rows else None


def any_keys(db: Database | None = None) -> bool:
    return (db or get_db()).one("SELECT 1 FROM api_keys LIMIT 1") is not None


def ensure_admin_key(db: Database | None = None) -> str | None:
    """On a data dir with no keys at all, create an admin key for the default project; returns its secret."""
    db = db or get_db()
    if any_keys(db):
        return None
    _, secret = create_key(DEFAULT_PROJECT, admin=True, name="first admin key", db=db)
    return secret
