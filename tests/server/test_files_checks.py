"""One set of checks for a data file: the CLI, the upload and job creation agree on lines, problems and limits."""

from __future__ import annotations

import json
import time

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from ladder.cli.main import app
from ladder.store.db import get_db

runner = CliRunner()


@pytest.fixture
def client(ladder_home, monkeypatch):
    from ladder.server.app import create_app
    from ladder.server.config import ServerConfig
    from ladder.tuning import service

    monkeypatch.setattr(service, "ensure_worker", lambda: None)
    return TestClient(create_app(ServerConfig(require_keys=False)))


def _example(i: int, text: str = "") -> bytes:
    return json.dumps({"prompt": f"question {i}{text}", "completion": f"answer {i}"}, ensure_ascii=False).encode()


def _cli_error_lines(path) -> list[int]:
    r = runner.invoke(app, ["data", "validate", str(path), "--no-tokens", "--json"])
    assert r.exception is None or isinstance(r.exception, SystemExit), r.exception
    return sorted(p["line"] for p in json.loads(r.output)["problems"] if p["severity"] == "error")


@pytest.mark.parametrize(
    "name,prefix,separator",
    [
        ("bom.jsonl", b"\xef\xbb\xbf", b"\n"),
        ("crlf.jsonl", b"", b"\r\n"),
        ("u2028.jsonl", b"", b"\n"),
    ],
)
def test_cli_and_upload_agree_on_line_numbers(client, tmp_path, name, prefix, separator):
    """\\n ends a line, nothing else: a BOM, CRLF, or U+2028 / U+2029 / NEL inside a string change no number."""
    rows = [_example(i, "\u2028 and\u0085 and\u2029" if name == "u2028.jsonl" else "") for i in range(12)]
    rows[1] = _example(1, "\u2028\u2028\u0085")  # in every file: a line U+2028-aware splitting would break
    rows[6] = b'{"prompt": "no completion"}'
    rows[9] = b"{not json"
    data = prefix + separator.join(rows) + separator
    path = tmp_path / name
    path.write_bytes(data)
    assert _cli_error_lines(path) == [7, 10]
    r = client.post("/v1/files", data={"purpose": "fine-tune"}, files={"file": (name, data)})
    assert r.status_code == 400
    msg = r.json()["error"]["message"]
    assert msg.startswith(f"{name}: 2 problems:") and "line 7, completion" in msg and "line 10: invalid JSON" in msg


def test_a_valid_file_with_a_bom_and_u2028_passes_both(client, tmp_path):
    data = b"\xef\xbb\xbf" + b"\n".join(_example(i, "\u2028\u0085") for i in range(12)) + b"\n"
    (tmp_path / "ok.jsonl").write_bytes(data)
    assert _cli_error_lines(tmp_path / "ok.jsonl") == []
    assert (
        client.post("/v1/files", data={"purpose": "fine-tune"}, files={"file": ("ok.jsonl", data)}).status_code == 200
    )


def test_upload_and_job_creation_report_the_same_problems(client):
    """Every problem, counted, at upload: the same message job creation gives (no more surprises later)."""
    rows = [_example(i) for i in range(40)]
    for i in range(0, 40, 2):  # 20 bad lines of kinds the old upload check let through
        rows[i] = json.dumps({"prompt": f"q{i}", "completion": f"a{i}", "extra": 1}).encode()
    data = b"\n".join(rows) + b"\n"
    up = client.post("/v1/files", data={"purpose": "fine-tune"}, files={"file": ("many.jsonl", data)})
    assert up.status_code == 400
    raw = client.post("/v1/files", data={"purpose": "batch"}, files={"file": ("many.jsonl", data)}).json()["id"]
    job = client.post("/v1/fine_tuning/jobs", json={"training_file": raw, "model": "smollm2-135m-instruct"})
    assert job.status_code == 400
    a, b = up.json()["error"]["message"], job.json()["error"]["message"]
    assert a == b and a.startswith("many.jsonl: 20 problems:")
    shown = a.count("\n  line ")
    assert shown >= 5 and (shown == 20 or f"and {20 - shown} more" in a)
    (failed,) = get_db().query("SELECT status, error FROM ft_jobs")
    assert failed["status"] == "failed" and json.loads(failed["error"])["message"] == b


def test_tune_names_the_users_file_not_a_copy(tmp_path):
    bad = tmp_path / "wrong.csv"
    bad.write_text("question,answer\nhello,world\n")
    r = runner.invoke(app, ["tune", str(bad), "--detach"])
    assert r.exit_code != 0
    msg = r.exception.message
    assert msg.startswith("wrong.csv: 1 problem") and "--input-col" in msg and "training_file" not in msg
    assert get_db().one("SELECT COUNT(*) AS n FROM ft_jobs")["n"] == 0


def test_size_is_checked_before_reading(client, tmp_path, monkeypatch):
    """A 2 GB file is refused from its size alone, by the CLI and the API (no read, no RSS)."""
    huge = tmp_path / "huge.jsonl"
    with open(huge, "wb") as f:
        f.truncate(2 * 1024**3)  # sparse: nothing is written, but reading it would take 2 GB
    for argv in (["data", "validate", str(huge), "--no-tokens"], ["tune", str(huge), "--detach"]):
        start = time.perf_counter()
        r = runner.invoke(app, argv)
        assert time.perf_counter() - start < 5
        assert r.exit_code != 0 and "over the limit of 67,108,864 bytes" in r.exception.message
        assert r.exception.status == 413
    monkeypatch.setenv("LADDER_MAX_FILE_BYTES", "1000")
    from ladder.settings import reset_settings

    reset_settings()
    r = client.post("/v1/files", data={"purpose": "eval"}, files={"file": ("big.jsonl", b"x" * 1001)})
    assert r.status_code == 413 and "big.jsonl: 1,001 bytes is over the limit of 1,000" in r.json()["error"]["message"]
    assert get_db().one("SELECT COUNT(*) AS n FROM files")["n"] == 0


def test_kb_add_checks_the_size_first(tmp_path):
    huge = tmp_path / "huge.txt"
    with open(huge, "wb") as f:
        f.truncate(2 * 1024**3)
    from ladder.knowledge.ingest import read_bounded

    start = time.perf_counter()
    with pytest.raises(Exception, match="over the size limit") as e:
        read_bounded(huge)
    assert e.value.status == 413 and time.perf_counter() - start < 1
