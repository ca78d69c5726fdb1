"""Large blobs as files under the data dir, named by generated ids and written atomically."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from ladder.settings import get_settings


def blob_path(blob_id: str) -> Path:
    """Where a blob with this generated id lives (ids never come from users)."""
    if not blob_id or "/" in blob_id or "\\" in blob_id or blob_id.startswith("."):
        raise ValueError(f"not a blob id: {blob_id!r}")
    return get_settings().blobs_dir / blob_id[:2].lower() / blob_id


def write_blob(blob_id: str, data: bytes) -> tuple[Path, str]:
    """Write bytes atomically (temp file, fsync, rename); returns (path, sha256)."""
    path = blob_path(blob_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path, hashlib.sha256(data).hexdigest()


def delete_blob(blob_id: str) -> None:
    blob_path(blob_id).unlink(missing_ok=True)


def stored_blobs() -> Iterator[Path]:
    """Every blob file on disk (not the `.tmp-*` files of writes in progress or abandoned)."""
    root = get_settings().blobs_dir
    if not root.is_dir():
        return
    for shard in root.iterdir():
        if shard.is_dir() and not shard.name.startswith("."):
            yield from (p for p in shard.iterdir() if p.is_file() and not p.name.startswith("."))


def atomic_dir(final: Path) -> Path:
    """A fresh temporary sibling of `final`; fill it, then `commit_dir(tmp, final)`."""
    final.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(dir=final.parent, prefix=f".tmp-{final.name}-"))


def commit_dir(tmp: Path, final: Path) -> None:
    """Move a filled temporary directory into place in one rename."""
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
