"""Large blobs named by generated ids: files under the data dir (default) or any fsspec URL.

LADDER_BLOB_URL=s3://bucket/prefix (s3fs installed) or file:///mnt/shared/ladder puts uploaded files
where every machine of a deployment can read them; the `files` table then records the blob's URL,
and a reader on any machine fetches it (`read_blob`, `local_copy`). Unset, blobs are files under
<home>/blobs written atomically (temp file, fsync, rename) and recorded by their path.
"""

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


def blob_url(blob_id: str) -> str | None:
    """The blob's URL under LADDER_BLOB_URL, or None when blobs are local files."""
    root = get_settings().blob_url
    if not root:
        return None
    blob_path(blob_id)  # the same id check
    return f"{root.rstrip('/')}/{blob_id[:2].lower()}/{blob_id}"


def is_url(location: str) -> bool:
    return "://" in location


def write_blob(blob_id: str, data: bytes) -> tuple[str, str]:
    """Store bytes under the id; returns (location, sha256): a path, or a URL under LADDER_BLOB_URL.

    Through fsspec the object appears whole or not at all (object stores write whole objects; a local
    fsspec path is written by the filesystem's own put).
    """
    url = blob_url(blob_id)
    if url is not None:
        import fsspec

        with fsspec.open(url, "wb", auto_mkdir=True) as f:
            f.write(data)
        return url, hashlib.sha256(data).hexdigest()
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
    return str(path), hashlib.sha256(data).hexdigest()


def read_blob(location: str) -> bytes:
    """The bytes at a location `write_blob` returned (a path, or a URL of any fsspec filesystem)."""
    if not is_url(location):
        return Path(location).read_bytes()
    import fsspec

    with fsspec.open(location, "rb") as f:
        return f.read()


def local_copy(location: str, blob_id: str) -> Path:
    """A path on this machine holding the blob: the file itself, or a copy fetched once into the cache."""
    if not is_url(location):
        return Path(location)
    copy = get_settings().cache_dir / "blobs" / blob_id
    if not copy.is_file():
        copy.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=copy.parent, prefix=".tmp-")
        with os.fdopen(fd, "wb") as f:
            f.write(read_blob(location))
        os.replace(tmp, copy)
    return copy


def delete_blob(blob_id: str, location: str | None = None) -> None:
    """Remove the blob: at `location` when given, else wherever the current settings put this id."""
    location = location or blob_url(blob_id)
    if location and is_url(location):
        import fsspec

        fs, path = fsspec.core.url_to_fs(location)
        if fs.exists(path):
            fs.rm(path)
        return
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
