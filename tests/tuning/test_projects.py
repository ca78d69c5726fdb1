"""Resume over HTTP (project-scoped) and `--project` on the `jobs`, `tune` and `kb` commands."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from tests.tuning.conftest import queued_job
from typer.testing import CliRunner

from ladder.cli.main import app as cli
from ladder.errors import NotFound
from ladder.server import keys
from ladder.tuning import jobs, leases, service, worker

runner = CliRunner()


@pytest.fixture
def no_worker(monkeypatch) -> list:
    """Record worker starts instead of starting training processes."""
    started: list = []
    monkeypatch.setattr(service, "ensure_worker", lambda: started.append(1))
    return started


def failed_job(project_id: str) -> jobs.Job:
    job = queued_job(project_id)
    jobs.fail(job.id, "worker_died", "the worker died")
    return jobs.load(job.id, None)


def test_resume_over_http_is_scoped_to_the_callers_project(no_worker):
    from ladder.server.app import create_app

    _, acme_key = keys.create_key("acme")
    _, other_key = keys.create_key("other")
    job = failed_job(keys.project_by_name("acme"))
    client = TestClient(create_app())
    url = f"/v1/fine_tuning/jobs/{job.id}/resume"

    denied = client.post(url, headers={"Authorization": f"Bearer {other_key}"})
    assert denied.status_code == 404 and denied.json()["error"]["code"] == "job_not_found"
    assert jobs.load(job.id, None).status == "failed" and no_worker == []

    ok = client.post(url, headers={"Authorization": f"Bearer {acme_key}"})
    assert ok.status_code == 200, ok.text
    body = ok.json()
    assert body["object"] == "fine_tuning.job" and body["id"] == job.id
    assert body["status"] == "queued" and body["error"] is None
    assert no_worker == [1]  # no supervisor in this app: a worker was started directly

    again = client.post(url, headers={"Authorization": f"Bearer {acme_key}"})
    assert again.status_code == 409  # only failed or cancelled jobs resume
    assert url.replace(job.id, "{job_id}") in client.get("/openapi.json").json()["paths"]


def test_jobs_commands_take_a_project(tiny_model, train_file, no_worker):
    acme = keys.project_by_name("acme", create=True)
    res = runner.invoke(
        cli,
        [
            "tune",
            str(train_file),
            "--model",
            tiny_model,
            "--epochs",
            "1",
            "--batch-size",
            "4",
            "--lora-r",
            "4",
            "--max-length",
            "96",
            "--detach",
            "--project",
            "acme",
        ],
    )
    assert res.exit_code == 0, res.output
    assert "--project acme --follow" in " ".join(res.output.split())  # rich wraps lines
    (job,) = service.list_jobs(acme)
    assert service.list_jobs() == []  # not in the default project
    assert job.id in runner.invoke(cli, ["jobs", "list", "--project", "acme"]).output
    assert job.id not in runner.invoke(cli, ["jobs", "list"]).output

    shown = runner.invoke(cli, ["jobs", "show", job.id, "--json", "--project", "acme"])
    assert json.loads(shown.output)["status"] == "queued"
    assert isinstance(runner.invoke(cli, ["jobs", "show", job.id]).exception, NotFound)
    assert runner.invoke(cli, ["jobs", "cancel", job.id, "--project", "acme"]).exit_code == 0
    assert "Job cancelled." in runner.invoke(cli, ["jobs", "events", job.id, "--project", "acme"]).output
    assert runner.invoke(cli, ["jobs", "resume", job.id, "--project", "acme", "--detach"]).exit_code == 0
    assert worker.run_job(leases.claim_next("w")).status == "succeeded"
    ckpts = runner.invoke(cli, ["jobs", "checkpoints", job.id, "--json", "--project", "acme"])
    assert json.loads(ckpts.output)


def test_an_unknown_project_is_a_clear_error():
    res = runner.invoke(cli, ["jobs", "list", "--project", "nope"])
    assert isinstance(res.exception, NotFound)
    assert "no project named 'nope' (projects: default)" in res.exception.message
    assert "ladder keys create --project nope" in res.exception.message
    assert isinstance(runner.invoke(cli, ["kb", "list", "--project", "nope"]).exception, NotFound)


def test_kb_commands_take_a_project(tmp_path):
    from tests.knowledge.conftest import HashEmbedder

    from ladder.knowledge import embedder as embedder_mod

    previous = embedder_mod.set_embedder(HashEmbedder())
    try:
        keys.project_by_name("acme", create=True)
        doc = tmp_path / "guide.md"
        doc.write_text("# Guide\n\nRefunds take five days.\n")

        def ok(*args: str) -> str:
            result = runner.invoke(cli, list(args))
            assert result.exit_code == 0, result.output
            return result.output

        ok("kb", "create", "help", "--project", "acme")
        ok("kb", "add", "help", str(doc), "--project", "acme")
        assert "help" in ok("kb", "list", "--project", "acme") and "help" not in ok("kb", "list")
        assert "guide.md" in ok("kb", "docs", "help", "--project", "acme")
        hits = json.loads(ok("kb", "search", "help", "refunds", "--json", "--project", "acme"))
        assert hits and hits[0]["doc_name"] == "guide.md"
        assert isinstance(runner.invoke(cli, ["kb", "docs", "help"]).exception, NotFound)
        ok("kb", "reindex", "help", "--project", "acme")
        ok("kb", "rm", "help", "guide.md", "--project", "acme")
        ok("kb", "delete", "help", "--yes", "--project", "acme")
        assert "help" not in ok("kb", "list", "--project", "acme")
    finally:
        embedder_mod.set_embedder(previous)
