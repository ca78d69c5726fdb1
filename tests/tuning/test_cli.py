"""The CLI: `ladder tune --detach`, `ladder jobs ...`, errors shown to people."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from ladder.cli.main import app
from ladder.tuning import leases, service, worker

runner = CliRunner()


def test_tune_then_jobs_commands(tiny_model, train_file, monkeypatch):
    started = []
    monkeypatch.setattr(service, "ensure_worker", lambda: started.append(1))
    res = runner.invoke(
        app,
        [
            "tune",
            str(train_file),
            "--model",
            tiny_model,
            "--suffix",
            "cli",
            "--epochs",
            "1",
            "--batch-size",
            "4",
            "--lora-r",
            "4",
            "--max-length",
            "96",
            "--seed",
            "3",
            "--detach",
        ],
    )
    assert res.exit_code == 0, res.output
    assert started == [1]
    (job,) = service.list_jobs()
    assert job.id in res.output and job.resolved["n_epochs"] == 1 and job.seed == 3
    worker.run_job(leases.claim_next("cli-test"))

    shown = runner.invoke(app, ["jobs", "show", job.id, "--json"])
    body = json.loads(shown.output)
    assert body["status"] == "succeeded" and body["fine_tuned_model"] == f"ft:{tiny_model}:cli:{job.id}"
    listed = runner.invoke(app, ["jobs", "list"])
    assert job.id in listed.output and "succeeded" in listed.output
    events = runner.invoke(app, ["jobs", "events", job.id])
    assert "Step 3/3" in events.output
    ckpts = runner.invoke(app, ["jobs", "checkpoints", job.id, "--json"])
    assert [c["step_number"] for c in json.loads(ckpts.output)] == [3, 2, 1]  # auto: total_steps // 5, at least 1


def test_bad_epochs_and_unknown_job(tiny_model, train_file):
    res = runner.invoke(app, ["tune", str(train_file), "--model", tiny_model, "--epochs", "many"])
    assert res.exit_code != 0 and "--epochs" in res.output
    from ladder.errors import NotFound

    res = runner.invoke(app, ["jobs", "cancel", "ftjob-nope"])
    assert isinstance(res.exception, NotFound)
