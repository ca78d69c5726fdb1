"""Uploaded files in a real S3 endpoint (moto on localhost): written, read from another data dir, deleted."""

from __future__ import annotations

from ladder.settings import reset_settings
from ladder.store import files
from tests.s3_server import s3_blob_url, s3_endpoint, s3_keys  # noqa: F401 (fixtures)


def test_a_file_goes_to_s3_is_read_back_elsewhere_and_deleted(s3_blob_url, tmp_path, monkeypatch):  # noqa: F811
    rec = files.create(b'{"text": "hello"}\n', "data.jsonl", "eval")
    assert rec.blob_path == f"{s3_blob_url}/{rec.id[:2].lower()}/{rec.id}"
    assert s3_keys(s3_blob_url) == [f"{rec.id[:2].lower()}/{rec.id}"]
    # another machine's cache: the bytes are fetched from S3, not found on this disk
    monkeypatch.setenv("LADDER_CACHE_DIR", str(tmp_path / "machine-b-cache"))
    reset_settings()
    again = files.resolve_file(rec.id)
    assert again.read_bytes() == b'{"text": "hello"}\n'
    assert again.local_path().read_bytes() == b'{"text": "hello"}\n'
    assert again.local_path().is_relative_to(tmp_path / "machine-b-cache")
    files.delete(rec.id)
    assert s3_keys(s3_blob_url) == []
