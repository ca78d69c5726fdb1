"""Uploaded files (`file-…`): bytes under blobs/ at the generated id, metadata in the `files` table.

API inputs name files by id only (`resolve_file`); a path on disk becomes a file only through
`upload_path`, which the CLI calls with its user's own path before passing the id on.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

from ladder.errors import InvalidInput, NotFound, TooLarge
from ladder.ids import check_id, new_id
from ladder.settings import get_settings
from ladder.store.blobs import delete_blob, local_copy, read_blob, write_blob
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
        return {
            "id": self.id,
            "object": "file",
            "bytes": self.bytes,
            "created_at": int(self.created_at),
            "filename": self.filename,
            "purpose": self.purpose,
            "status": "processed",
        }

    def as_dict(self) -> dict:
        return asdict(self)

    def read_bytes(self) -> bytes:
        return read_blob(self.blob_path)

    def local_path(self) -> Path:
        """A path on this machine with the file's bytes (fetched once when blobs live under a URL)."""
        return local_copy(self.blob_path, self.id)


def display_name(filename: str) -> str:
    """The user's name kept for display: control characters (NUL included) dropped, length bounded."""
    cleaned = "".join(ch for ch in filename if ch.isprintable())
    return cleaned[:MAX_FILENAME] or "unnamed"


def check_size(size: int, name: str, param: str = "file") -> None:
    """TooLarge (413) when a data file is over `max_file_bytes`; called before its bytes are read."""
    limit = get_settings().max_file_bytes
    if size > limit:
        raise TooLarge(
            f"{name}: {size:,} bytes is over the limit of {limit:,} bytes for a data file "
            "(LADDER_MAX_FILE_BYTES); split it",
            code="file_too_large",
            param=param,
        )


def check_upload(data: bytes, filename: str, purpose: str, columns: dict | None = None) -> None:
    """The checks an upload gets before it is stored; a fine-tune file gets those a job will run."""
    if purpose not in PURPOSES:
        raise InvalidInput(f"purpose {purpose[:64]!r} is not one of {', '.join(PURPOSES)}", param="purpose")
    check_size(len(data), filename)
    if not data:
        raise InvalidInput(f"{filename}: the file is empty", param="file")
    if purpose == "fine-tune":
        from ladder.data.formats import DatasetError, parse_dataset

        _, problems = parse_dataset(data, name=filename, **(columns or {}))
        errors = [p for p in problems if p.severity == "error"]
        if errors:
            raise DatasetError(filename, errors, param="file")


def upload(
    data: bytes, filename: str, purpose: str, project_id: str = DEFAULT_PROJECT, columns: dict | None = None
) -> FileRecord:
    """Check then store an upload (as POST /v1/files does); `columns` name a CSV's input/output."""
    name = display_name(filename or "")
    check_upload(data, name, purpose, columns)
    return create(data, name, purpose, project_id)


def upload_path(
    path: str | Path, purpose: str, project_id: str = DEFAULT_PROJECT, columns: dict | None = None
) -> FileRecord:
    """The CLI's way in for a user's own file: its size is checked before a byte is read."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise InvalidInput(f"{path}: no such file", code="file_not_found", param="file")
    check_size(p.stat().st_size, str(path))
    with open(p, "rb") as f:  # read at most one byte past the limit, even if the file grew meanwhile
        data = f.read(get_settings().max_file_bytes + 1)
    check_size(len(data), str(path))
    return upload(data, p.name, purpose, project_id, columns)


def resolve_file(
    file_id: object, project_id: str = DEFAULT_PROJECT, param: str = "file_id", db: Database | None = None
) -> FileRecord:
    """The project's file with this id: 400 unless it is shaped like an id, 404 unless it exists.

    Only ever a lookup in the store: no value, however it looks, is tried as a path.
    """
    check_id(file_id, "file", param)
    row = (db or get_db()).one("SELECT * FROM files WHERE id=? AND project_id=?", (file_id, project_id))
    if row is None:
        raise NotFound(f"{param}: no file {file_id!r} in this project (POST /v1/files uploads one)", param=param)
    return FileRecord(**dict(row))


def create(
    data: bytes, filename: str, purpose: str, project_id: str = DEFAULT_PROJECT, db: Database | None = None
) -> FileRecord:
    """Store bytes as a file record (no content checks: see `upload`)."""
    if purpose not in PURPOSES:
        raise InvalidInput(f"purpose {purpose!r} is not one of {', '.join(PURPOSES)}", param="purpose")
    db = db or get_db()
    fid = new_id("file")
    location, digest = write_blob(fid, data)
    rec = FileRecord(fid, project_id, display_name(filename), purpose, len(data), digest, location, time.time())
    try:
        db.execute(
            "INSERT INTO files(id, project_id, filename, purpose, bytes, sha256, blob_path, created_at)"
            " VALUES (?,?,?,?,?,?,?,?)",
            (rec.id, rec.project_id, rec.filename, rec.purpose, rec.bytes, rec.sha256, rec.blob_path, rec.created_at),
        )
    except BaseException:
        delete_blob(fid, location)
        raise
    return rec


def get(file_id: str, project_id: str = DEFAULT_PROJECT, db: Database | None = None) -> FileRecord:
    row = (db or get_db()).one("SELECT * FROM files WHERE id=? AND project_id=?", (file_id, project_id))
    if row is None:
        raise NotFound(f"no file with id {file_id!r}", param="file_id")
    return FileRecord(**dict(row))


def list_files(
    project_id: str = DEFAULT_PROJECT, purpose: str | None = None, db: Database | None = None
) -> list[FileRecord]:
    sql, args = "SELECT * FROM files WHERE project_id=?", [project_id]
    if purpose:
        sql += " AND purpose=?"
        args.append(purpose)
    return [FileRecord(**dict(r)) for r in (db or get_db()).query(sql + " ORDER BY created_at DESC", tuple(args))]


def delete(file_id: str, project_id: str = DEFAULT_PROJECT, db: Database | None = None) -> None:
    db = db or get_db()
    rec = get(file_id, project_id, db)
    db.execute("DELETE FROM files WHERE id=?", (rec.id,))
    delete_blob(rec.id, rec.blob_path)
