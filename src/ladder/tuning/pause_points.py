"""Test-only pause points in the tuning worker, so a test can kill it at an exact moment.

Inert unless `LADDER_TUNING_PAUSE_DIR` names a directory (nothing else reads that variable). A test
arms a point by writing `<dir>/<point>.armed`, optionally holding JSON conditions on the point's
details (`{"job": "ftjob-…", "step": 3}`). The first worker process to reach that point with
matching details takes the file (one rename, so only one process can), writes
`<dir>/<point>.paused` holding `{"pid": ..., **details}` and then waits to be killed. Points that
are not armed cost one environment lookup.

Points: `claimed` (a job was just claimed), `loading_data` (tokenizer loaded, data not yet encoded),
`after_step` (an optimizer step was recorded), `checkpoint_writing` (a checkpoint's files are in its
temporary directory, not yet renamed), `checkpoint_renamed` (a checkpoint is complete on disk, its
row not yet written), `adapter_saved` (the final adapter is on disk, nothing registered yet),
`registering` (inside the final transaction, after the model was registered, before commit).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

ENV = "LADDER_TUNING_PAUSE_DIR"
POINTS = (
    "claimed",
    "loading_data",
    "after_step",
    "checkpoint_writing",
    "checkpoint_renamed",
    "adapter_saved",
    "registering",
)


def reached(point: str, **details) -> None:
    """Pause here for good if a test armed `point`; otherwise return at once."""
    root = os.environ.get(ENV)
    if not root:
        return
    if point not in POINTS:
        raise ValueError(f"unknown pause point {point!r}")
    armed = Path(root) / f"{point}.armed"
    try:
        want = json.loads(armed.read_text() or "{}")
    except FileNotFoundError:
        return
    if any(details.get(k) != v for k, v in want.items()):
        return
    try:
        os.rename(armed, Path(root) / f"{point}.taken-{os.getpid()}")
    except FileNotFoundError:
        return
    note = Path(root) / f".{point}.paused.tmp-{os.getpid()}"
    note.write_text(json.dumps({"pid": os.getpid(), **details}))
    os.replace(note, Path(root) / f"{point}.paused")  # the test sees it complete or not at all
    while True:  # the test kills this process now
        time.sleep(3600)
