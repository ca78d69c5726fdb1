"""Uploaded files (`file-…`): bytes under blobs/ at the generated id, metadata in the `files` table."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

from ladder.errors import InvalidInput, NotFound
from ladder.ids import new_id
from ladder.store.blobs import delete_blob, write_blob
from ladder.store.db import DEFAULT_PROJECT, Database, get_db

PURPOSES = ("fine-tune", "assistants", "batch", "knowledge", "eval")
MAX_FILENAME = 255


@dataclass
class FileRecord:
    id: str
    project_id: str
    filename: str  # as the user gave it; display only, never a path on disk
    purpose: str
    bytes: int
    sha256: str
    blob_path: str
    created_at: float

    def as_openai(self) -> dict:
        return {"id": self.id, "object": "file", "bytes": self.bytes, "created_at": int(self.created_at),
                "filename": self.filename, "purpose": self.purpose, "status": "processed"}

    def as_dict(self) -> dict:
        return asdict(self)

    def read_bytes(self) -> bytes:
        return Path(self.blob_path).read_bytes()


def display_name(filename: str) -> str:
    """The user's name kept for display: control characters (NUL included) dropped, length bounded."""
    cleaned = "".join(ch for ch in filename if ch.isprintable())
    return cleaned[:MAX_FILENAME] or "unnamed"


def create(data: bytes, filename: str, purpose: str, project_id: str = DEFAULT_PROJECT,
           db: Database | None = None) -> FileRecord:
    if purpose not in PURPOSES:
        raise InvalidInput(f"purpose {purpose!r} is not one of {', '.join(PURPOSES)}", param="purpose")
    db = db or get_db()
    fid = new_id("file")
    path, digest = write_blob(fid, data)
    rec = FileRecord(fid, project_id, display_name(filename), purpose, len(data), digest, str(path), time.time())
    try:
        db.execute(
            "INSERT INTO files(id, project_id, filename, purpose, bytes, sha256, blob_path, created_at)"
            " VALUES (?,?,?,?,?,?,?,?)",
            (rec.id, rec.project_id, rec.filename, rec.purpose, rec.bytes, rec.sha256, rec.blob_path,
             rec.created_at),
        )
    except BaseException:
        delete_blob(fid)
        raise
    return rec


def get(file_id: str, project_id: str = DEFAULT_PROJECT, db: Database | None = None) -> FileRecord:
    row = (db or get_db()).one("SELECT * FROM files WHERE id=? AND project_id=?", (file_id, project_id))
    if row is None:
        raise NotFound(f"no file with id {file_id!r}", param="file_id")
    return FileRecord(**dict(row))


def list_files(project_id: str = DEFAULT_PROJECT, purpose: str | None = None,
               db: Database | None = None) -> list[FileRecord]:
    sql, args = "SELECT * FROM files WHERE project_id=?", [project_id]
    if purpose:
        sql += " AND purpose=?"
        args.append(purpose)
    return [FileRecord(**dict(r)) for r in (db or get_db()).query(sql + " ORDER BY created_at DESC", tuple(args))]


def delete(file_id: str, project_id: str = DEFAULT_PROJECT, db: Database | None = None) -> None:
    db = db or get_db()
    rec = get(file_id, project_id, db)
    db.execute("DELETE FROM files WHERE id=?", (rec.id,))
    delete_blob(rec.id)
