"""Scratch directories inside the data dir (`LADDER_HOME/tmp`), one per run, removed when the run ends."""

from __future__ import annotations

import fcntl
import os
import shutil
import tempfile
import time
from pathlib import Path

from ladder.settings import get_settings

LOCK = ".owner.lock"
# A directory seen without a held lock is left alone this long: its creator may be between
# mkdtemp and flock. Creating and locking takes microseconds; a minute is a wide margin.
UNLOCKED_GRACE_S = 60.0


def scratch_root() -> Path:
    return get_settings().home / "tmp"


class Scratch:
    """A fresh directory under `<home>/tmp` that this process owns until `close()` (or the `with` ends).

    Ownership is an exclusive flock on a file inside it. The kernel drops the lock when the owner
    exits in any way, kill -9 included, so the start-up sweep can tell a live run's directory (which
    may be hours old: a climb reads its input once and then trains) from a crashed run's without
    guessing from ages.
    """

    def __init__(self, prefix: str = "run"):
        root = scratch_root()
        root.mkdir(parents=True, exist_ok=True)
        self.path = Path(tempfile.mkdtemp(dir=root, prefix=f"{prefix}-"))
        self._fd: int | None = os.open(self.path / LOCK, os.O_CREAT | os.O_RDWR, 0o600)
        fcntl.flock(self._fd, fcntl.LOCK_EX)

    def close(self) -> None:
        """Remove the directory and everything in it; safe to call twice."""
        if self._fd is None:
            return
        shutil.rmtree(self.path, ignore_errors=True)
        os.close(self._fd)
        self._fd = None

    def __enter__(self) -> Path:
        return self.path

    def __exit__(self, *exc) -> None:
        self.close()


def scratch_dir(prefix: str = "run") -> Scratch:
    """`with scratch_dir("eval") as d:` a directory under the data dir, gone when the block ends."""
    return Scratch(prefix)


def owner_alive(path: Path) -> bool:
    """Whether a live process (this one or another) owns the directory, or may be about to lock it."""
    return _locked(path) or _younger_than(path, UNLOCKED_GRACE_S)


def _locked(path: Path) -> bool:
    try:
        fd = os.open(path / LOCK, os.O_RDWR)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing drops the lock if we took it
    return False


def _younger_than(path: Path, seconds: float) -> bool:
    try:
        return time.time() - path.stat().st_mtime < seconds
    except FileNotFoundError:
        return False


def remove_abandoned() -> list[Path]:
    """Remove scratch directories whose owner is gone; returns what was removed."""
    root = scratch_root()
    if not root.is_dir():
        return []
    removed = []
    for p in sorted(root.iterdir()):
        if p.is_dir() and not p.is_symlink():
            if owner_alive(p):
                continue
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)  # nothing but run directories belongs here
        removed.append(p)
    return removed
