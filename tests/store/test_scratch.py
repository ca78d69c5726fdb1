"""Run scratch dirs live under LADDER_HOME/tmp, go when the run ends, and only abandoned ones are swept."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import pytest

from ladder.store.scratch import Scratch, owner_alive, remove_abandoned, scratch_dir, scratch_root
from tests.server.conftest import make_server, srv  # noqa: F401 (fixtures)


def _age(path: Path, seconds: float) -> None:
    t = time.time() - seconds
    os.utime(path, (t, t))


def test_scratch_is_inside_the_data_dir_and_gone_after_the_block(ladder_home):
    with scratch_dir("eval") as d:
        assert d.parent == ladder_home / "tmp" and d.name.startswith("eval-")
        (d / "test.jsonl").write_text("{}\n")
        assert owner_alive(d)
    assert not d.exists()
    s = Scratch()
    s.close()
    s.close()  # twice is fine
    assert list(scratch_root().iterdir()) == []


def test_a_live_owner_keeps_its_dir_however_old(ladder_home):
    s = Scratch("climb")
    try:
        _age(s.path, 86400)  # a climb reads its input once and then trains for hours
        assert remove_abandoned() == [] and s.path.is_dir()
    finally:
        s.close()


def test_a_dir_whose_owner_was_killed_is_swept_and_a_fresh_unlocked_one_is_not(ladder_home, tmp_path):
    ready = tmp_path / "ready"
    code = (
        "import sys, time; from ladder.store.scratch import Scratch; "
        f"s = Scratch('eval'); open({str(ready)!r}, 'w').write(str(s.path)); time.sleep(600)"
    )
    env = {**os.environ, "LADDER_HOME": str(ladder_home)}
    proc = subprocess.Popen([sys.executable, "-c", code], env=env)
    try:
        deadline = time.time() + 30
        while not ready.exists() or not ready.read_text():
            assert time.time() < deadline and proc.poll() is None
            time.sleep(0.05)
        theirs = Path(ready.read_text())
        _age(theirs, 3600)
        assert remove_abandoned() == [] and theirs.is_dir()  # another live process owns it
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    assert remove_abandoned() == [theirs] and not theirs.exists()  # the kernel dropped its lock

    creating = scratch_root() / "run-just-made"  # mkdtemp done, flock not yet taken
    creating.mkdir()
    assert remove_abandoned() == [] and creating.is_dir()
    _age(creating, 120)
    assert remove_abandoned() == [creating]


def _ladder_run_dirs() -> set[str]:
    return {p.name for p in Path(tempfile.gettempdir()).glob("ladder-run-*")}


def _wait(url: str, headers: dict) -> dict:
    deadline = time.time() + 180
    while True:
        task = httpx.get(url, headers=headers, timeout=30).json()
        if task["status"] not in ("queued", "running"):
            return task
        assert time.time() < deadline, task
        time.sleep(0.3)


@pytest.mark.slow
def test_eval_and_climb_over_http_leave_no_temp_files(srv, tiny_model, ladder_home):  # noqa: F811
    before = _ladder_run_dirs()
    h = {"Authorization": f"Bearer {srv.admin_key}"}
    cfg = {"model": tiny_model, "max_tokens": 3, "parser": {"kind": "label", "labels": ["yes", "no"]}}
    assert httpx.post(srv.url + "/api/bots", json={"name": "judge", "config": cfg}, headers=h).status_code == 200
    rows = b"".join(b'{"input": "is %d even?", "output": "%s"}\n' % (i, b"yes" if i % 2 else b"no") for i in range(4))
    test = srv.client().files.create(file=("test.jsonl", rows), purpose="eval")
    broken = srv.client().files.create(file=("broken.jsonl", b'{"neither": 1}\n'), purpose="eval")

    ok = httpx.post(srv.url + "/api/evals", json={"bot": "judge", "test_file": test.id}, headers=h).json()
    assert _wait(srv.url + f"/api/evals/{ok['id']}", h)["status"] == "succeeded"
    bad = httpx.post(srv.url + "/api/evals", json={"bot": "judge", "test_file": broken.id}, headers=h)
    if bad.status_code == 200:  # refused while running, or at once: either way its copy must go
        assert _wait(srv.url + f"/api/evals/{bad.json()['id']}", h)["status"] == "failed"
    else:
        assert bad.status_code == 400, bad.text

    train_rows = b"".join(
        b'{"input": "message %d about %s", "output": "%s"}\n'
        % (i, b"bills" if i % 2 else b"parcels", b"billing" if i % 2 else b"shipping")
        for i in range(12)
    )
    train = srv.client().files.create(file=("train.jsonl", train_rows), purpose="eval")
    body = {"train_file": train.id, "test_file": test.id, "model": tiny_model, "target": "accuracy=0", "tune": False}
    started = httpx.post(srv.url + "/api/climbs", json=body, headers=h)
    assert started.status_code == 200, started.text
    climbed = _wait(srv.url + f"/api/climbs/{started.json()['id']}", h)
    assert climbed["status"] == "succeeded", climbed

    assert _ladder_run_dirs() == before  # nothing in the system temp dir
    assert list((ladder_home / "tmp").iterdir()) == []  # and nothing left in ours
