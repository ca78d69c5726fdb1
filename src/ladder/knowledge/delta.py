"""What a KB's document operations changed since a cached copy: rows kept, rows added.

Chunk rowids are `num << 32 | seq` with seq never reused, so a chunk's text and metadata never change
under the same rowid (a replaced document gets new rowids) and new rows always come after the old
ones. A cache (vector matrix, keyword postings) can therefore be patched: mark the rows that are gone
dead, append the new ones. Vectors do change in place on a reindex, which `kbs.vectors_version` records.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# A change touching more than this share of a KB's rows is cheaper to reload than to patch.
PATCH_LIMIT = 0.25


@dataclass
class Delta:
    keep: np.ndarray  # bool per cached row: still there
    added: np.ndarray  # rowids that are new, ascending, all after the cached ones


def row_delta(cached: np.ndarray, now: np.ndarray) -> Delta | None:
    """The change from `cached` to `now` (ascending rowids), or None when it should be reloaded."""
    keep = np.isin(cached, now, assume_unique=True)
    added = now[~np.isin(now, cached, assume_unique=True)]
    if len(added) and len(cached) and added[0] <= cached[-1]:
        return None  # rows appeared between cached ones: not a sequence of document operations
    if (len(cached) - int(keep.sum())) + len(added) > PATCH_LIMIT * max(len(now), 1):
        return None
    return Delta(keep, added)


def rowids_in(conn, sql: str, *args) -> np.ndarray:
    """The rowids a `SELECT group_concat(<rowid>) ...` query lists, as an ascending int64 array."""
    listed = conn.execute(sql, args).fetchone()[0]
    return np.sort(np.fromstring(listed, dtype=np.int64, sep=",")) if listed else np.zeros(0, dtype=np.int64)
