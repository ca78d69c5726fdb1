"""Uploaded files under LADDER_BLOB_URL: readable from another machine's data dir, removed with the file."""

from __future__ import annotations

import pytest

from ladder.settings import reset_settings
from ladder.store import files
from ladder.store.blobs import blob_url


@pytest.fixture
def shared_blobs(tmp_path, monkeypatch):
    root = tmp_path / "shared-blobs"
    monkeypatch.setenv("LADDER_BLOB_URL", root.as_uri())
    reset_settings()
    return root


def test_a_file_lives_under_the_blob_url_and_another_home_reads_it(shared_blobs, tmp_path, monkeypatch, postgres_url):
    # Two machines share the database only on PostgreSQL.
    monkeypatch.setenv("LADDER_DATABASE_URL", postgres_url)
    reset_settings()
    rec = files.create(b'{"text": "hello"}\n', "data.jsonl", "eval")
    assert rec.blob_path == blob_url(rec.id) and rec.blob_path.startswith("file://")
    assert (shared_blobs / rec.id[:2].lower() / rec.id).read_bytes() == b'{"text": "hello"}\n'
    # Another machine: its own LADDER_HOME, the same database and blob store.
    monkeypatch.setenv("LADDER_HOME", str(tmp_path / "machine-b"))
    reset_settings()
    other = files.resolve_file(rec.id)
    assert other.read_bytes() == b'{"text": "hello"}\n'
    local = other.local_path()
    assert local.read_bytes() == b'{"text": "hello"}\n' and not local.is_relative_to(shared_blobs)


def test_deleting_the_file_removes_the_object(shared_blobs):
    rec = files.create(b"abc", "a.txt", "eval")
    stored = shared_blobs / rec.id[:2].lower() / rec.id
    assert stored.exists()
    files.delete(rec.id)
    assert not stored.exists()
    with pytest.raises(Exception, match="no file"):
        files.get(rec.id)


def test_a_local_copy_is_fetched_once(shared_blobs):
    rec = files.create(b"x,y\n1,2\n", "t.csv", "eval")
    first = rec.local_path()
    assert first.read_bytes() == b"x,y\n1,2\n"
    (shared_blobs / rec.id[:2].lower() / rec.id).unlink()  # gone from the store: the copy still serves
    assert rec.local_path() == first and first.read_bytes() == b"x,y\n1,2\n"
