"""Path injection through every API input that names a file: ids only, never a path, nothing copied."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from ladder.store.db import get_db

SECRET = b'{"prompt": "the host secret", "completion": "leaked"}\n' * 12


@pytest.fixture
def client(ladder_home):
    from ladder.server.app import create_app
    from ladder.server.config import ServerConfig

    return TestClient(create_app(ServerConfig(require_keys=False)))


@pytest.fixture
def traps(tmp_path, ladder_home, monkeypatch):
    """A server cwd where each hostile value IS an existing path, so the old `exists()` test took it."""
    cwd = tmp_path / "srv" / "cwd"
    (cwd / "file-x").mkdir(parents=True)
    (tmp_path / "srv" / "hostname").write_bytes(SECRET)  # reached as file-x/../../hostname
    # a real file whose name is a well-formed id: still only ever looked up in the store
    (cwd / ("file-" + "A" * 24)).write_bytes(SECRET)
    get_db()  # create ladder.db so the relative route to it exists
    (ladder_home / "file-x").mkdir()
    monkeypatch.chdir(cwd)
    return [
        "file-x/../../hostname",
        "file-x/../../../../../../etc/hostname",
        "file-../ladder.db",
        f"file-x/../{'../' * 12}{str(ladder_home / 'ladder.db').lstrip('/')}",
        str(tmp_path / "srv" / "hostname"),
        "/etc/hostname",
        "~/.bashrc",
        "file-~",
        "file-abc\x00def",
        "file-" + "a" * 24 + "\x00",
        "file-" + "a" * 240,  # overlong but under the schema's 256
        "file-" + "A" * 24,  # shaped like an id and an existing relative path: not in the store
        "file-" + "A" * 24 + "/../hostname",
        "FILE-" + "a" * 24,
        "file-" + "a" * 23 + ".",
    ]


def _rows(table: str) -> int:
    return get_db().one(f"SELECT COUNT(*) AS n FROM {table}")["n"]


def test_no_file_input_is_read_as_a_path(client, traps, capsys):
    from ladder.pipelines import service

    service.create_bot("b", {"model": "smollm2-135m-instruct"})
    ok = _uploaded(client)
    bodies = []
    for v in traps:
        bodies += [
            ("/v1/fine_tuning/jobs", {"training_file": v, "model": "smollm2-135m-instruct"}),
            ("/v1/fine_tuning/jobs", {"training_file": ok, "validation_file": v, "model": "smollm2-135m-instruct"}),
            ("/api/evals", {"bot": "b", "test_file": v}),
            ("/api/climbs", {"train_file": v, "test_file": v}),
        ]
    files_before, jobs_before = _rows("files"), _rows("ft_jobs")
    tried = clean = 0
    failures = []
    for path, body in bodies:
        tried += 1
        r = client.post(path, json=body)
        msg = r.json().get("error", {}).get("message", "")
        # 422: the schema's id pattern refused it; 400/404: the id resolver did (same grammar)
        named = "file id" in msg or "no file" in msg or "^file-[A-Za-z0-9]{24}$" in msg
        if r.status_code in (400, 404, 422) and named and "leaked" not in r.text:
            clean += 1
        else:
            failures.append((path, repr(body)[:120], r.status_code, r.text[:300]))
    # nothing was copied into the project, and no job was created from any of them
    assert _rows("files") == files_before and _rows("ft_jobs") == jobs_before
    blobs = get_db().query("SELECT blob_path FROM files")
    assert all(SECRET not in Path(b["blob_path"]).read_bytes() for b in blobs)
    with capsys.disabled():
        print(f"\nRELIABILITY path-injection: tried={tried} clean={clean} failed={tried - clean}")
    assert not failures, failures


def _uploaded(client) -> str:
    rows = "".join(f'{{"prompt": "question {i}", "completion": "answer {i}"}}\n' for i in range(12)).encode()
    r = client.post("/v1/files", data={"purpose": "fine-tune"}, files={"file": ("ok.jsonl", rows)})
    assert r.status_code == 200, r.text
    return r.json()["id"]


def test_service_layer_takes_ids_only(traps):
    """Below HTTP too: create_job and the test-set check look values up in the store, nothing else."""
    from ladder.errors import LadderError
    from ladder.evals.testset import check_test_file
    from ladder.tuning import service

    for v in traps:
        for call, args in ((service.create_job, (v,)), (check_test_file, (v, "proj-default"))):
            with pytest.raises(LadderError) as e:
                call(*args)
            assert e.value.status in (400, 404) and ("not a file id" in e.value.message or "no file" in e.value.message)
    assert _rows("files") == 0 and _rows("ft_jobs") == 0


def test_the_cli_uploads_a_path_then_passes_the_id(tmp_path, monkeypatch):
    """`ladder tune PATH` is where a path becomes a file: uploaded (checked) first, the job gets the id."""
    from typer.testing import CliRunner

    from ladder.cli.main import app
    from ladder.tuning import service

    monkeypatch.setattr(service, "ensure_worker", lambda: None)
    data = tmp_path / "mine.jsonl"
    data.write_bytes(b"".join(b'{"prompt": "q %d", "completion": "a %d"}\n' % (i, i) for i in range(12)))
    r = CliRunner().invoke(app, ["tune", str(data), "--detach"])
    assert r.exit_code == 0, r.output
    (job,) = service.list_jobs()
    row = get_db().one("SELECT * FROM files WHERE id=?", (job.training_file,))
    assert row["filename"] == "mine.jsonl" and row["purpose"] == "fine-tune"


def test_a_path_where_an_id_belongs_is_told_what_to_send(client):
    r = client.post(
        "/v1/fine_tuning/jobs", json={"training_file": "file-x/../../etc/hostname", "model": "smollm2-135m-instruct"}
    )
    assert r.status_code == 422
    err = r.json()["error"]
    assert err["param"] == "training_file"
    assert "file id" in err["message"] and "POST /v1/files" in err["message"]
