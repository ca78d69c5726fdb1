"""Two API servers on one PostgreSQL for 60 seconds: searches through both while documents are added
and deleted through both. No request fails, and no deleted document's text is returned by a search
that started after its DELETE had returned, on either server."""

from __future__ import annotations

import random
import threading
import time

import pytest

from ladder.settings import reset_settings
from ladder.store.db import reset_dbs
from tests.reliability.shared_servers import machine_env, serve

DURATION_S = 60


@pytest.mark.slow
def test_searches_through_two_servers_never_see_a_deleted_document(postgres_url, tmp_path, monkeypatch):
    from ladder.server import keys

    monkeypatch.setenv("LADDER_DATABASE_URL", postgres_url)
    reset_settings()
    reset_dbs()
    _, key = keys.create_key("default", admin=True)
    reset_dbs()
    blobs = tmp_path / "blobs"
    servers = [
        serve(
            machine_env(postgres_url, tmp_path / f"machine-{n}", blobs, LADDER_SERVER_RATE_LIMIT_RPM="1000000"),
            tmp_path / f"server-{n}.log",
            key,
        )
        for n in "ab"
    ]
    try:
        a, b = (s.client() for s in servers)
        assert a.post("/api/kbs", json={"name": "live"}).status_code == 200
        # a document that stays, so every search has something to return
        r = b.post("/api/kbs/live/documents", files={"file": ("base.txt", b"Opening hours are nine to five.")})
        assert r.status_code == 200, r.text
        deleted: dict[str, float] = {}  # marker -> when its DELETE returned
        live: list[str] = []
        errors: list[str] = []
        stale: list[str] = []
        lock = threading.Lock()
        stop = time.monotonic() + DURATION_S
        counts = {"added": 0, "deleted": 0, "searches": 0}

        def writer() -> None:
            clients = [s.client() for s in servers]
            n = 0
            while time.monotonic() < stop:
                n += 1
                marker = f"zq{n}marker"
                up, down = clients[n % 2], clients[(n + 1) % 2]
                r = up.post(
                    "/api/kbs/live/documents",
                    files={"file": (f"{marker}.txt", f"The {marker} policy covers refunds {marker}.".encode())},
                )
                if r.status_code != 200:
                    errors.append(f"add {marker}: {r.status_code} {r.text[:200]}")
                    continue
                with lock:
                    live.append(marker)
                    counts["added"] += 1
                time.sleep(random.uniform(0, 0.3))
                r = down.delete(f"/api/kbs/live/documents/{marker}.txt")
                if r.status_code != 200:
                    errors.append(f"delete {marker}: {r.status_code} {r.text[:200]}")
                    continue
                with lock:
                    live.remove(marker)
                    deleted[marker] = time.monotonic()
                    counts["deleted"] += 1

        def reader(seed: int) -> None:
            rng = random.Random(seed)
            clients = [s.client() for s in servers]
            while time.monotonic() < stop:
                with lock:
                    pool = list(deleted) + live
                marker = rng.choice(pool) if pool else "refunds"
                started = time.monotonic()
                with lock:
                    gone_before = {m for m, t in deleted.items() if t < started}
                r = rng.choice(clients).post("/api/kbs/live/search", json={"query": f"{marker} policy", "k": 5})
                if r.status_code != 200:
                    errors.append(f"search: {r.status_code} {r.text[:200]}")
                    continue
                with lock:
                    counts["searches"] += 1
                for hit in r.json()["data"]:
                    for m in gone_before:
                        if m in hit["text"]:
                            stale.append(f"{m} returned {time.monotonic() - deleted[m]:.2f} s after its delete")

        threads = [threading.Thread(target=writer)] + [threading.Thread(target=reader, args=(i,)) for i in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        print(f"60 s through two servers: {counts}")
        assert errors == []
        assert stale == []
        assert counts["added"] >= 20 and counts["deleted"] >= 20 and counts["searches"] >= 100, counts
    finally:
        for s in servers:
            s.stop()
