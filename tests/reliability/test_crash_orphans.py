"""kill -9 of a real `ladder serve` in the middle of KB and /v1/files uploads leaves no orphan after a restart."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from ladder.store.sweep import BLOB_GRACE_S, TMP_GRACE_S, is_temp_name

ROOT = Path(__file__).resolve().parents[2]
# The real server and CLI entry point, with the KB tests' hashed-words embedder in place of MiniLM:
# embedding is not what is under test, and MiniLM on 2 CPUs would take minutes for these documents.
LAUNCH = (
    "import sys; from ladder.knowledge import embedder; from tests.knowledge.conftest import HashEmbedder; "
    "embedder.set_embedder(HashEmbedder()); from ladder.cli.main import main; "
    "sys.argv = ['ladder', 'serve', '--port', sys.argv[1], '--log-level', 'warning']; main()"
)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, home: Path, log: Path):
        self.home, self.log, self.proc = home, log, None
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        env = {
            **os.environ,
            "LADDER_HOME": str(self.home),
            "PYTHONPATH": str(ROOT),
            "HF_HUB_OFFLINE": "1",
            "OMP_NUM_THREADS": "1",
            "LADDER_EMBED_CHUNKS_PER_DAY": "10000000",
        }
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", LAUNCH, str(self.port)], cwd=ROOT, env=env, stdout=out, stderr=out
            )
        deadline = time.time() + 60
        while True:
            try:
                if httpx.get(self.url + "/api/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if self.proc.poll() is not None or time.time() > deadline:
                self.proc.kill()
                pytest.fail(f"the server did not start:\n{self.log.read_text()[-3000:]}")
            time.sleep(0.1)

    def kill(self) -> None:
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.kill()


def _multipart(fields: dict[str, str], filename: str, data: bytes, chunk: int, delay: float, sent: list[int]):
    """A multipart body yielded piece by piece (a slow client), counting the file bytes sent."""
    boundary = "ladder" + uuid.uuid4().hex
    part = '--{b}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'
    head = "".join(part.format(b=boundary, k=k, v=v) for k, v in fields.items())
    head += (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    )

    def body():
        yield head.encode()
        for i in range(0, len(data), chunk):
            yield data[i : i + chunk]
            sent[0] += len(data[i : i + chunk])
            if delay:
                time.sleep(delay)
        yield f"\r\n--{boundary}--\r\n".encode()

    return body(), f"multipart/form-data; boundary={boundary}"


def _shard(home: Path) -> Path:
    return home / "blobs" / "fi"  # every blob is a `file-…` id, sharded by its first two letters


def _names(home: Path) -> set[str]:
    try:
        return set(os.listdir(_shard(home)))
    except FileNotFoundError:
        return set()


@dataclass
class KillPoint:
    name: str
    kind: str  # files | kb
    triggers: tuple[str, ...]  # body (a share of the file sent) | tmp (.tmp-* appeared) | blob (new blob) | after
    size: int
    chunk: int = 256 * 1024
    delay: float = 0.0
    fired: str = ""
    found: dict = field(default_factory=dict)


def _kb_document(n_chunks: int, seed: int) -> bytes:
    rnd = random.Random(seed)
    words = ["refund", "router", "billing", "parcel", "outage", "invoice", "modem", "plan", "credit", "signal"]
    paras = []
    for i in range(n_chunks):
        paras.append(f"## Section {seed}-{i}\n\n" + " ".join(rnd.choice(words) for _ in range(40)) + ".")
    return "\n\n".join(paras).encode()


def _upload_and_kill(server: Server, key: str, kp: KillPoint, seed: int) -> None:
    sent = [0]
    if kp.kind == "files":
        data = random.Random(seed).randbytes(kp.size)
        body, ctype = _multipart({"purpose": "assistants"}, f"big-{seed}.bin", data, kp.chunk, kp.delay, sent)
        url = server.url + "/v1/files"
    else:
        data = _kb_document(kp.size, seed)
        # wait=true: the request ingests while it is killed (a queued ingest is durable and would finish)
        fields = {"policy": "replace", "wait": "true"}
        body, ctype = _multipart(fields, f"manual-{seed}.md", data, kp.chunk, kp.delay, sent)
        url = server.url + "/api/kbs/manuals/documents"
    before = _names(server.home)
    outcome: list[object] = []

    def post() -> None:
        try:
            r = httpx.post(
                url, content=body, headers={"Authorization": f"Bearer {key}", "Content-Type": ctype}, timeout=120
            )
            outcome.append(r.status_code)
        except httpx.HTTPError as e:  # the server died under it: expected
            outcome.append(type(e).__name__)

    t = threading.Thread(target=post, daemon=True)
    t.start()
    deadline, body_done_at = time.time() + 60, None
    while time.time() < deadline:
        names = _names(server.home) - before
        if "tmp" in kp.triggers and any(is_temp_name(n) for n in names):
            kp.fired = "tmp"
        elif "blob" in kp.triggers and any(not n.startswith(".") for n in names):
            kp.fired = "blob"
        elif "body" in kp.triggers and sent[0] >= len(data) // 3:
            kp.fired = "body"
        elif "after" in kp.triggers and sent[0] >= len(data):
            body_done_at = body_done_at or time.time()
            if time.time() - body_done_at > 0.15:
                kp.fired = "after"
        if kp.fired or outcome:
            break
        time.sleep(0.0005)
    server.kill()
    t.join(30)
    if not kp.fired:
        kp.fired = f"none (request ended: {outcome})"


def _inspect(home: Path) -> dict:
    """What is on disk and in the database right now (the server is dead or between requests)."""
    temp = [p for p in home.rglob("*") if is_temp_name(p.name)]
    conn = sqlite3.connect(home / "ladder.db")
    try:
        rows = conn.execute("SELECT id, blob_path FROM files").fetchall()
        integrity = conn.execute("PRAGMA integrity_check").fetchone()[0]
        dangling_docs = conn.execute(
            "SELECT COUNT(*) FROM kb_docs WHERE file_id IS NOT NULL AND file_id NOT IN (SELECT id FROM files)"
        ).fetchone()[0]
    finally:
        conn.close()
    ids = {r[0] for r in rows}
    blobs = [p for p in _shard(home).glob("*") if not p.name.startswith(".")] if _shard(home).is_dir() else []
    return {
        "temp": temp,
        "orphan_blobs": [p for p in blobs if p.name not in ids],
        "missing_blobs": [i for i, path in rows if not Path(path).exists()],
        "integrity": integrity,
        "dangling_docs": dangling_docs,
    }


def _age_leftovers(found: dict) -> None:
    """Move leftovers past the sweep's grace periods, as if the restart came an hour later.

    A young leftover may be a live writer's in another process, so the sweep waits before taking it
    (tests/store/test_sweep.py checks that it does); this test is about what a restart then clears.
    """
    t = time.time() - max(TMP_GRACE_S, BLOB_GRACE_S) - 60
    for p in found["temp"] + found["orphan_blobs"]:
        for q in [p, *p.rglob("*")] if p.is_dir() else [p]:
            os.utime(q, (t, t))


KILL_POINTS = [
    KillPoint("files: mid-body (slow client)", "files", ("body",), 6 * 1024**2, chunk=64 * 1024, delay=0.01),
    KillPoint("files: blob being written", "files", ("tmp",), 40 * 1024**2),
    KillPoint("files: blob renamed, row not yet committed", "files", ("blob",), 40 * 1024**2),
    KillPoint("kb: parsing and embedding", "kb", ("after",), 1500),
    KillPoint("kb: blob being written inside the transaction", "kb", ("tmp", "blob"), 1800),
    KillPoint("kb: chunks being inserted", "kb", ("blob",), 1800),
    KillPoint("kb: chunks being inserted (again)", "kb", ("blob",), 1900),
]


@pytest.mark.slow
def test_server_kills_mid_upload_leave_no_orphans_after_restart(ladder_home, tmp_path):
    from ladder.server import keys

    _, key = keys.create_key("default", admin=True, name="crash test")
    server = Server(ladder_home, tmp_path / "server.log")
    server.start()
    h = {"Authorization": f"Bearer {key}"}
    try:
        r = httpx.post(server.url + "/api/kbs", json={"name": "manuals", "chunk_size": 64}, headers=h, timeout=30)
        assert r.status_code == 200, r.text
        # one document that must survive every crash and sweep intact
        ok = httpx.post(
            server.url + "/api/kbs/manuals/documents",
            files={"file": ("keep.md", b"# Refunds\n\nRefunds take five days.")},
            headers=h,
            timeout=60,
        )
        assert ok.status_code == 200, ok.text
        failed, found_any, left_after = [], {"temp": 0, "orphan_blobs": 0}, 0
        for seed, kp in enumerate(KILL_POINTS):
            _upload_and_kill(server, key, kp, seed)
            kp.found = _inspect(ladder_home)
            found_any["temp"] += len(kp.found["temp"])
            found_any["orphan_blobs"] += len(kp.found["orphan_blobs"])
            _age_leftovers(kp.found)
            server.start()  # the start-up sweep runs here
            after = _inspect(ladder_home)
            left_after += len(after["temp"]) + len(after["orphan_blobs"])
            hits = httpx.post(
                server.url + "/api/kbs/manuals/search", json={"query": "refunds"}, headers=h, timeout=60
            ).json()
            problems = [
                what
                for what, bad in [
                    (f"temp files left: {after['temp']}", after["temp"]),
                    (f"orphan blobs left: {after['orphan_blobs']}", after["orphan_blobs"]),
                    (f"rows without their blob: {after['missing_blobs']}", after["missing_blobs"]),
                    (f"integrity_check: {after['integrity']}", after["integrity"] != "ok"),
                    (f"documents without their file: {after['dangling_docs']}", after["dangling_docs"]),
                    ("the kept document is not found", not any("five days" in x["text"] for x in hits["data"])),
                ]
                if bad
            ]
            print(
                f"kill {seed + 1} ({kp.name}; fired on {kp.fired}): before restart {len(kp.found['temp'])} temp, "
                f"{len(kp.found['orphan_blobs'])} orphan blob(s); after: {problems or 'clean'}"
            )
            if problems:
                failed.append((kp.name, problems))
    finally:
        server.stop()
    tried = len(KILL_POINTS)
    print(
        f"RELIABILITY server-kill-orphans: tried={tried} clean={tried - len(failed)} failed={len(failed)} "
        f"(left by the kills: {found_any['temp']} temp, {found_any['orphan_blobs']} orphan blobs; "
        f"left after the restarts: {left_after})"
    )
    assert not failed, failed
    # The kills did land where orphans are made, so the sweep was exercised, not merely idle.
    assert found_any["temp"] >= 1 and found_any["orphan_blobs"] >= 1, found_any
