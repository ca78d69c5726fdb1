"""The start-up sweep: what a crash leaves behind in the data dir (temp files, orphan blobs, scratch dirs)."""

from __future__ import annotations

import logging
import os
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from ladder.settings import get_settings
from ladder.store import scratch
from ladder.store.blobs import is_url, stored_blobs
from ladder.store.db import Database, get_db

log = logging.getLogger("ladder.store")

# Several processes share a data dir (the server, the tuning worker, CLI commands), so a sweep must
# never take what a live writer in another process is still making. The rules below lean on how
# the writers behave rather than on a registry of writers:
#
# - A `.tmp-*` file or directory is filled without pause and then renamed into place (blobs,
#   checkpoints, reports, converted models), and every write moves its mtime. Newest mtime in the
#   tree older than TMP_GRACE_S means no one is writing it any more.
# - A blob is renamed into place and then its `files` row commits. For a KB document both happen
#   inside one write transaction; for `/v1/files` the insert waits at most SQLite's busy timeout
#   (30 s). The sweep reads the rows while holding the write lock, so a blob that is unreferenced
#   there and older than BLOB_GRACE_S cannot be in flight unless its writer has been frozen for an
#   hour - and then its insert fails cleanly rather than pointing at nothing.
# - Run scratch directories (`<home>/tmp`) may be hours old while their run is alive; their owner
#   holds an flock, which the kernel drops when it exits (see ladder.store.scratch).
TMP_GRACE_S = 10 * 60.0
BLOB_GRACE_S = 60 * 60.0

# `.tmp-…` from atomic writers (blobs, atomic_dir); `.<name>.tmp-<pid>` from single-file writers.
_TMP_NAME = re.compile(r"^\.tmp-|^\..+\.tmp-\d+$")


@dataclass
class SweepReport:
    tmp: list[Path] = field(default_factory=list)
    blobs: list[Path] = field(default_factory=list)
    scratch: list[Path] = field(default_factory=list)
    checkpoints: int = 0  # partial checkpoint dirs of finished jobs
    bytes_freed: int = 0
    missing_blobs: list[str] = field(default_factory=list)  # file ids whose bytes are gone (kept, reported)

    @property
    def removed(self) -> int:
        return len(self.tmp) + len(self.blobs) + len(self.scratch) + self.checkpoints

    def summary(self) -> str:
        text = (
            f"removed {len(self.tmp)} temp file(s), {len(self.blobs)} orphan blob(s), "
            f"{self.checkpoints} partial checkpoint(s) and {len(self.scratch)} abandoned run dir(s), "
            f"{self.bytes_freed / 1e6:.1f} MB"
        )
        if self.missing_blobs:
            text += f"; {len(self.missing_blobs)} file(s) have lost their bytes: {', '.join(self.missing_blobs[:5])}"
        return text


def is_temp_name(name: str) -> bool:
    return bool(_TMP_NAME.match(name))


def _size_and_newest(path: Path) -> tuple[int, float]:
    """(bytes, newest mtime) of a file or a whole tree, not following links."""
    st = path.lstat()
    if not path.is_dir() or path.is_symlink():
        return st.st_size, st.st_mtime
    size, newest = 0, st.st_mtime
    for root, dirs, names in os.walk(path):
        for n in dirs + names:
            try:
                s = os.lstat(os.path.join(root, n))
            except FileNotFoundError:
                continue
            size += s.st_size if n in names else 0
            newest = max(newest, s.st_mtime)
    return size, newest


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _temp_entries(roots: list[Path], skip: set[Path]) -> list[Path]:
    found = []
    for root in roots:
        if not root.is_dir():
            continue
        for here, dirs, names in os.walk(root):  # os.walk does not follow directory links
            base = Path(here)
            if base in skip:
                dirs[:] = []
                continue
            found += [base / n for n in names if is_temp_name(n)]
            temp_dirs = [d for d in dirs if is_temp_name(d)]
            found += [base / d for d in temp_dirs]
            dirs[:] = [d for d in dirs if d not in temp_dirs]  # removed whole, never walked into
    return found


def sweep_temp(report: SweepReport, now: float, grace_s: float) -> None:
    s = get_settings()
    roots = [s.home] + [d for d in (s.cache_dir, s.shared_dir) if not d.is_relative_to(s.home)]
    for p in _temp_entries(roots, skip={scratch.scratch_root()}):
        try:
            size, newest = _size_and_newest(p)
        except FileNotFoundError:  # its writer finished (renamed it) a moment ago
            continue
        if now - newest >= grace_s:
            _remove(p)
            report.tmp.append(p)
            report.bytes_freed += size


def sweep_blobs(report: SweepReport, now: float, grace_s: float, db: Database) -> None:
    with db.tx() as conn:  # the write lock: no row can commit while we decide (see the note above)
        rows = conn.execute("SELECT id, blob_path FROM files").fetchall()
        referenced = {r["id"] for r in rows} | {Path(r["blob_path"]).name for r in rows}
        for blob in stored_blobs():
            if blob.name in referenced:
                continue
            try:
                st = blob.lstat()
            except FileNotFoundError:
                continue
            if now - st.st_mtime >= grace_s:
                blob.unlink(missing_ok=True)
                report.blobs.append(blob)
                report.bytes_freed += st.st_size
    # Blobs under LADDER_BLOB_URL are another store's to keep; only local files are checked here.
    report.missing_blobs = [r["id"] for r in rows if not is_url(r["blob_path"]) and not Path(r["blob_path"]).exists()]


def sweep_checkpoints(report: SweepReport, db: Database) -> None:
    """Partial checkpoints of jobs that have ended: no worker writes them, whatever their age."""
    from ladder.tuning.checkpoints import remove_partial
    from ladder.tuning.jobs import TERMINAL
    from ladder.tuning.service import job_dir

    marks = ",".join("?" * len(TERMINAL))
    for row in db.query(f"SELECT id FROM ft_jobs WHERE status IN ({marks})", TERMINAL):
        d = job_dir(row["id"])
        if d.is_dir():
            report.checkpoints += remove_partial(d)


def sweep(
    *, tmp_grace_s: float = TMP_GRACE_S, blob_grace_s: float = BLOB_GRACE_S, db: Database | None = None
) -> SweepReport:
    """Remove leftovers of crashed writers from the data dir; safe while other ladder processes run."""
    report, now = SweepReport(), time.time()
    for p in scratch.remove_abandoned():
        report.scratch.append(p)
    db = db or get_db()
    sweep_checkpoints(report, db)
    sweep_temp(report, now, tmp_grace_s)
    sweep_blobs(report, now, blob_grace_s, db)
    if report.removed or report.missing_blobs:
        log.warning("start-up sweep: %s", report.summary())
    return report


def sweep_at_start() -> SweepReport | None:
    """The sweep as a process runs it when starting: a failure is logged, never fatal."""
    try:
        return sweep()
    except Exception:  # a busy or damaged store must not keep the server from starting
        log.exception("start-up sweep failed; the data dir was left as it was")
        return None
