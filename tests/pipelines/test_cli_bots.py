"""`ladder bots` and `ladder advise` from the command line."""

import json

from typer.testing import CliRunner

from ladder.cli.main import app

runner = CliRunner()


def test_bots_create_edit_show_list():
    r = runner.invoke(app, ["bots", "create", "desk", "--system", "Classify.", "--labels", "billing,shipping"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["config"]["parser"] == {
        "kind": "label",
        "labels": ["billing", "shipping"],
        "schema": None,
        "pattern": None,
    }
    r = runner.invoke(app, ["bots", "edit", "desk", "--instruction", "One word."])
    assert r.exit_code == 0 and json.loads(r.output)["version"] == 2
    r = runner.invoke(app, ["bots", "show", "desk", "--version", "1"])
    assert json.loads(r.output)["config"]["output_instruction"] == ""
    r = runner.invoke(app, ["bots", "list"])
    assert "desk" in r.output and r.exit_code == 0


def test_advise_from_flags():
    r = runner.invoke(
        app,
        [
            "advise",
            "--task",
            "classification",
            "--examples",
            "50",
            "--external-knowledge",
            "--changing",
            "--no-style",
            "--any-latency",
            "--any-cost",
            "--narrow",
            "--explain",
        ],
    )
    assert r.exit_code == 0, r.output
    assert "Start at: rag" in r.output and "at least 200" in r.output
