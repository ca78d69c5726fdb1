"""Directories and files under LADDER_BLOB_URL (checkpoints, adapters, reports) that any machine can fetch.

A directory is uploaded file by file with its COMPLETE marker written last, so a reader that sees the
marker sees every file (object stores write whole objects). fsspec's recursive `put` gives no order,
hence the loop by hand. A download goes into a temporary sibling and is renamed into place.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

from ladder.errors import LadderError
from ladder.settings import get_settings
from ladder.store.blobs import atomic_dir, commit_dir

COMPLETE = "COMPLETE"


class BlobStoreError(LadderError):
    """The blob store (LADDER_BLOB_URL) could not be read or written."""

    status = 503
    error_type = "api_error"


def remote_url(*parts: str) -> str | None:
    """`<LADDER_BLOB_URL>/<parts…>`, or None when blobs are local files."""
    root = get_settings().blob_url
    return "/".join([root.rstrip("/"), *parts]) if root else None


def _fs(url: str):
    import fsspec

    fs, path = fsspec.core.url_to_fs(url)
    return fs, path.rstrip("/")


def _failed(what: str, url: str, e: Exception) -> BlobStoreError:
    return BlobStoreError(
        f"could not {what} {url} (LADDER_BLOB_URL): {type(e).__name__}: {e}", code="blob_store_unavailable"
    )


def _copy(src, dst) -> None:
    import fsspec

    with fsspec.open(src, "rb") as r, fsspec.open(dst, "wb", auto_mkdir=True) as w:
        shutil.copyfileobj(r, w, 1 << 20)


def upload_file(local: Path, url: str) -> None:
    try:
        _copy(str(local), url)
    except Exception as e:
        raise _failed("upload to", url, e) from e


def download_file(url: str, dest: Path) -> bool:
    """Fetch one object into `dest` (atomically); False when there is none."""
    try:
        fs, path = _fs(url)
        fs.invalidate_cache(path)
        if not fs.exists(path):
            return False
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".tmp-{dest.name}")
        _copy(url, str(tmp))
        tmp.replace(dest)
        return True
    except Exception as e:
        raise _failed("download", url, e) from e


def upload_dir(local: Path, url: str) -> str:
    """Upload every file of `local` under `url`, the COMPLETE marker last; returns `url`."""
    files = sorted(p for p in local.rglob("*") if p.is_file() and p.name != COMPLETE)
    for f in files:
        upload_file(f, f"{url}/{f.relative_to(local).as_posix()}")
    marker = local / COMPLETE
    try:
        import fsspec

        with fsspec.open(f"{url}/{COMPLETE}", "wb", auto_mkdir=True) as w:
            w.write(marker.read_bytes() if marker.is_file() else b"{}")
    except Exception as e:
        raise _failed("upload to", url, e) from e
    return url


def complete_children(url: str, with_file: str | None = None) -> list[str]:
    """Names of the complete directories right under `url` (holding `with_file` too, when given), sorted."""
    try:
        fs, path = _fs(url)
        fs.invalidate_cache()  # another machine may have written since this process last listed
        names = {p.rstrip("/").split("/")[-2] for p in fs.glob(f"{path}/*/{COMPLETE}")}
        if with_file:
            names &= {p.rstrip("/").split("/")[-2] for p in fs.glob(f"{path}/*/{with_file}")}
    except Exception as e:
        raise _failed("list", url, e) from e
    return sorted(names)


def download_dir(url: str, dest: Path, skip: tuple[str, ...] = ()) -> Path:
    """Fetch a complete directory into `dest` (one rename), leaving out the file names in `skip`."""
    try:
        fs, path = _fs(url)
        fs.invalidate_cache(path)  # a listing cached before another machine finished the upload
        if not fs.exists(f"{path}/{COMPLETE}"):
            raise BlobStoreError(f"{url} is not a complete directory (no {COMPLETE} marker)", code="incomplete_blob")
        found = [p for p in fs.find(path) if p.split("/")[-1] not in skip]
    except BlobStoreError:
        raise
    except Exception as e:
        raise _failed("list", url, e) from e
    tmp = atomic_dir(dest)
    try:
        for p in found:
            rel = p[len(path) + 1 :]
            (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
            try:
                with fs.open(p, "rb") as r, open(tmp / rel, "wb") as w:
                    shutil.copyfileobj(r, w, 1 << 20)
            except Exception as e:
                raise _failed("download", f"{url}/{rel}", e) from e
        commit_dir(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return dest


def cached_dir(url: str, skip: tuple[str, ...] = ()) -> Path:
    """A local copy of a complete remote directory, fetched once into the cache dir."""
    dest = cache_path(url)
    if not (dest / COMPLETE).is_file():
        download_dir(url, dest, skip)
    return dest


def cache_path(url: str) -> Path:
    return get_settings().cache_dir / "blob-dirs" / hashlib.sha256(url.encode()).hexdigest()[:32]


def delete_tree(url: str) -> None:
    """Remove a remote directory (its marker first, so no reader trusts what remains) and its cached copy."""
    try:
        fs, path = _fs(url)
        if fs.exists(f"{path}/{COMPLETE}"):
            fs.rm(f"{path}/{COMPLETE}")
        if fs.exists(path):
            fs.rm(path, recursive=True)
    except Exception as e:
        raise _failed("delete", url, e) from e
    shutil.rmtree(cache_path(url), ignore_errors=True)


def read_text(url: str) -> str:
    import fsspec

    try:
        with fsspec.open(url, "rb") as f:
            return f.read().decode("utf-8")
    except Exception as e:
        raise _failed("read", url, e) from e


def delete_file(url: str) -> None:
    try:
        fs, path = _fs(url)
        if fs.exists(path):
            fs.rm(path)
    except Exception as e:
        raise _failed("delete", url, e) from e
