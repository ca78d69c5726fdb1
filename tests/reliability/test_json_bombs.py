"""JSON bombs through every surface that reads user JSON Lines: a line-numbered 4xx naming the file, never a 5xx.

Surfaces: `ladder data validate`, `ladder tune` (CLI), POST /v1/files, POST /v1/fine_tuning/jobs on an
uploaded file, a knowledge-base .jsonl upload, and an eval's test file. The bomb is on line 3 of a
file that is otherwise valid, so "line 3" in the message shows the line numbering agrees everywhere.
"""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from ladder.errors import LadderError
from ladder.store.db import get_db

BOMB_LINE = 3
LONG = 8 * 1024**2 + 1024  # just over the default line limit (max_json_line_bytes, 8 MiB)


def _line(a: str, b: str, value: bytes) -> bytes:
    return b'{"%s": %s, "%s": "x"}' % (a.encode(), value, b.encode())


# name -> (the bomb line for input key A and output key B, whether it must be refused)
BOMBS = {
    "int_5000_digits": (lambda a, b: _line(a, b, b"1" * 5000), True),
    "arrays_100000_deep": (lambda a, b: _line(a, b, b"[" * 100_000 + b"]" * 100_000), True),
    "objects_100000_deep": (lambda a, b: _line(a, b, b'{"k": ' * 100_000 + b"1" + b"}" * 100_000), True),
    "line_over_the_limit": (lambda a, b: _line(a, b, b'"' + b"y" * LONG + b'"'), True),
    "invalid_utf8": (lambda a, b: _line(a, b, b'"\xff\xfe bad"'), True),
    "lone_surrogate": (lambda a, b: _line(a, b, b'"\\ud800"'), True),
    "nan": (lambda a, b: _line(a, b, b"NaN"), True),
    "infinity": (lambda a, b: _line(a, b, b"-Infinity"), True),
    "float_overflow": (lambda a, b: _line(a, b, b"1e999"), True),
    "duplicate_keys": (lambda a, b: b'{"%s": "p", "%s": "q", "%s": "x"}' % (a.encode(), a.encode(), b.encode()), True),
    "nul_byte": (lambda a, b: _line(a, b, b'"a\x00b"'), True),
    # valid JSON Lines: accepted, with the same line numbers
    "u2028_and_nel_in_strings": (lambda a, b: _line(a, b, '"a\u2028b\u2029c\u0085d"'.encode()), False),
}
BOM = b"\xef\xbb\xbf"


def _file(a: str, b: str, bomb: bytes, *, bom: bool = False, n: int = 12) -> bytes:
    lines = [
        b'{"%s": "question %d about %s", "%s": "answer %d"}' % (a.encode(), i, b"xyz"[: i % 3 + 1], b.encode(), i)
        for i in range(n)
    ]
    lines[BOMB_LINE - 1] = bomb
    return (BOM if bom else b"") + b"\n".join(lines) + b"\n"


def _files(a: str, b: str) -> dict[str, tuple[bytes, bool]]:
    out = {name: (_file(a, b, make(a, b)), refuse) for name, (make, refuse) in BOMBS.items()}
    ok = b'{"%s": "a question", "%s": "its answer"}' % (a.encode(), b.encode())
    out["utf8_bom"] = (_file(a, b, ok, bom=True), False)
    return out


@pytest.fixture
def client(ladder_home, monkeypatch):
    from ladder.server.app import create_app
    from ladder.server.config import ServerConfig
    from ladder.tuning import service

    monkeypatch.setattr(service, "ensure_worker", lambda: None)  # accepted jobs stay queued
    return TestClient(create_app(ServerConfig(require_keys=False)))


def _ok_message(msg: str, name: str) -> bool:
    return f"line {BOMB_LINE}" in msg and name in msg


class Tally:
    def __init__(self):
        self.tried = self.clean = 0
        self.failures: list[str] = []

    def check(self, surface: str, bomb: str, ok: bool, detail: str) -> None:
        self.tried += 1
        if ok:
            self.clean += 1
        else:
            self.failures.append(f"{surface} / {bomb}: {detail[:300]}")


def _http(tally, surface, bomb, refuse, name, r) -> None:
    if refuse:
        msg = r.json().get("error", {}).get("message", "") if r.status_code < 500 else ""
        good = r.status_code in (400, 413) and _ok_message(msg, name)
    else:
        good = r.status_code == 200
    tally.check(surface, bomb, good, f"{r.status_code} {r.text}")


def _queued_ingest(tally, bomb, refuse, name, client, data) -> None:
    """A large upload is queued (202) whatever it holds; the worker's task then refuses it, naming the file."""
    from ladder.queue.worker import QueueWorker

    r = client.post("/api/kbs/kb/documents", files={"file": (f"queued-{name}", data)}, data={"wait": "false"})
    if r.status_code == 200 and not refuse:  # its content is in the KB already (the upload above): nothing to queue
        tally.check("KB .jsonl upload (queued)", bomb, r.json()["status"] == "unchanged", r.text)
        return
    if r.status_code != 202:
        tally.check("KB .jsonl upload (queued)", bomb, False, f"{r.status_code} {r.text}")
        return
    QueueWorker(("ingest",)).run_one()
    task = client.get(f"/api/kbs/kb/ingests/{r.json()['id']}").json()
    if refuse:
        msg = (task.get("error") or {}).get("message", "")
        good = task["status"] == "failed" and _ok_message(msg, f"queued-{name}")
    else:
        good = task["status"] == "succeeded"
    tally.check("KB .jsonl upload (queued)", bomb, good, str(task))


def _cli(tally, surface, bomb, refuse, name, result) -> None:
    exc = result.exception
    if refuse:
        # `ladder` prints a LadderError's message (cli/main.py); anything else would be a traceback
        good = isinstance(exc, LadderError | SystemExit) and result.exit_code != 0
        text = exc.message if isinstance(exc, LadderError) else result.output
        good = good and _ok_message(" ".join(text.split()), name)
    else:
        good = result.exit_code == 0 and (exc is None or isinstance(exc, SystemExit))
        text = result.output
    tally.check(surface, bomb, good, f"exit {result.exit_code} {type(exc).__name__}: {text}")


def _validated(tally, bomb, refuse, path, result) -> None:
    """`data validate --json`: the report names the file, and the bomb's line is the only error."""
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        return tally.check("data validate", bomb, False, f"{type(result.exception).__name__}: {result.exception}")
    report = json.loads(result.output)
    errors = {p["line"] for p in report["problems"] if p["severity"] == "error"}
    good = report["path"] == str(path) and errors == ({BOMB_LINE} if refuse else set())
    tally.check("data validate", bomb, good and result.exit_code == (1 if refuse else 0), result.output)


def test_json_bombs_on_every_surface(client, tmp_path, monkeypatch, capsys):
    from ladder.cli.main import app
    from ladder.knowledge import embedder as embedder_mod
    from ladder.pipelines import service as bots
    from tests.knowledge.conftest import HashEmbedder

    previous = embedder_mod.set_embedder(HashEmbedder())
    # an accepted eval is only queued: this app is not served (no lifespan), so no worker runs it
    bots.create_bot("b", {"model": "smollm2-135m-instruct"})
    assert client.post("/api/kbs", json={"name": "kb"}).status_code == 200
    runner, tally = CliRunner(), Tally()
    try:
        for bomb, (data, refuse) in _files("prompt", "completion").items():
            name = f"bomb-{bomb}.jsonl"
            path = tmp_path / name
            path.write_bytes(data)

            r = runner.invoke(app, ["data", "validate", str(path), "--no-tokens", "--json"])
            _validated(tally, bomb, refuse, path, r)

            _cli(tally, "ladder tune", bomb, refuse, name, runner.invoke(app, ["tune", str(path), "--detach"]))

            up = client.post("/v1/files", data={"purpose": "fine-tune"}, files={"file": (name, data)})
            _http(tally, "/v1/files", bomb, refuse, name, up)

            # stored unchecked (another purpose), so job creation's own checks are what answers
            raw = client.post("/v1/files", data={"purpose": "batch"}, files={"file": (name, data)}).json()["id"]
            job = client.post("/v1/fine_tuning/jobs", json={"training_file": raw, "model": "smollm2-135m-instruct"})
            _http(tally, "/v1/fine_tuning/jobs", bomb, refuse, name, job)

            test = client.post("/v1/files", data={"purpose": "eval"}, files={"file": (name, data)}).json()["id"]
            _http(
                tally, "/api/evals", bomb, refuse, name, client.post("/api/evals", json={"bot": "b", "test_file": test})
            )

        for bomb, (data, refuse) in _files("text", "title").items():
            name = f"kb-{bomb}.jsonl"
            r = client.post("/api/kbs/kb/documents", files={"file": (name, data)}, data={"wait": "true"})
            _http(tally, "KB .jsonl upload", bomb, refuse, name, r)
            _queued_ingest(tally, bomb, refuse, name, client, data)
    finally:
        embedder_mod.set_embedder(previous)

    stuck = get_db().one("SELECT COUNT(*) AS n FROM ft_jobs WHERE status='validating_files'")["n"]
    with capsys.disabled():
        print(
            f"\nRELIABILITY json-bombs: tried={tally.tried} clean={tally.clean} failed={len(tally.failures)} "
            f"({len(BOMBS) + 1} files x 7 surfaces; jobs left validating_files: {stuck})"
        )
    assert not tally.failures, "\n".join(tally.failures)
    assert stuck == 0
    assert tally.tried == (len(BOMBS) + 1) * 7


def test_kb_eval_questions_are_read_under_the_same_bounds(tmp_path):
    from ladder.errors import InvalidInput
    from ladder.knowledge.evaluate import read_questions

    for bomb, (make, _) in BOMBS.items():
        if bomb.startswith("u2028"):
            continue
        path = tmp_path / f"{bomb}.jsonl"
        path.write_bytes(_file("question", "doc", make("question", "doc")))
        with pytest.raises(InvalidInput, match=f"{bomb}.jsonl: line {BOMB_LINE}: "):
            read_questions(path)


def test_a_job_never_stays_validating_files(ladder_home, monkeypatch):
    """An unexpected error while validating fails the job; one left by a dead process is failed later."""
    from ladder.data import formats
    from ladder.store import files
    from ladder.tuning import jobs, service
    from ladder.tuning.supervisor import Supervisor

    rec = files.create(_file("prompt", "completion", b'{"prompt": "p", "completion": "c"}'), "t.jsonl", "fine-tune")

    def broken(*a, **kw):
        raise RuntimeError("a bug in a reader")

    monkeypatch.setattr(formats, "read_dataset", broken)
    with pytest.raises(RuntimeError):
        service.create_job(rec.id)
    (job,) = service.list_jobs()
    assert job.status == "failed" and job.error["code"] == "internal_error"

    left = jobs.insert_job(
        project_id="proj-default",
        model="m",
        suffix=None,
        training_file=rec.id,
        validation_file=None,
        hyperparameters={},
        seed=1,
    )
    assert service.fail_stale_validations() == []  # a fresh one may be mid-validation in another process
    get_db().execute("UPDATE ft_jobs SET created_at=created_at-3600 WHERE id=?", (left.id,))
    Supervisor().tick()  # what `ladder serve` and `ladder worker` run from start-up on
    assert jobs.load(left.id, "proj-default").status == "failed"
    assert service.fail_stale_validations() == []
