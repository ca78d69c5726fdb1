"""`ladder data ...` through typer's CliRunner on the real app."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from ladder.cli.main import app
from tests.conftest import needs_datasets
from tests.data.helpers import chat, labelled, write_jsonl

runner = CliRunner()


def test_validate_prints_every_error_with_its_line_and_exits_1(tmp_path):
    f = write_jsonl(
        tmp_path / "t.jsonl",
        [*labelled(12), "{bad json", {"messages": [{"role": "bot", "content": "x"}]}, chat("", "y")],
    )
    r = runner.invoke(app, ["data", "validate", str(f), "--no-tokens"])
    assert r.exit_code == 1, r.output
    out = " ".join(r.output.split())
    assert "line 13" in out and "invalid JSON" in out
    assert "line 14 messages[0].role: unknown role 'bot'" in out
    assert "line 14 messages: no assistant message" in out
    assert "line 15 messages[0].content: empty content" in out
    assert "4 errors" in out and "examples" in out


def test_validate_ok_exits_0_and_json_has_the_report(tmp_path):
    f = write_jsonl(tmp_path / "t.jsonl", labelled(30))
    r = runner.invoke(app, ["data", "validate", str(f), "--no-tokens", "--task", "classification"])
    assert r.exit_code == 0, r.output
    assert "below the 200 minimum" in " ".join(r.output.split())
    r = runner.invoke(app, ["data", "validate", str(f), "--no-tokens", "--json"])
    d = json.loads(r.output)
    assert d["ok"] and d["n_examples"] == 30 and d["labels"] == {"billing": 10, "shipping": 10, "refund": 10}


def test_validate_with_tokens_uses_the_model(tmp_path, tiny_model):
    f = write_jsonl(tmp_path / "t.jsonl", labelled(12))
    r = runner.invoke(app, ["data", "validate", str(f), "--model", tiny_model])
    assert r.exit_code == 0, r.output
    out = " ".join(r.output.split())
    assert "tokens / example" in out and "estimated training" in out and tiny_model in out


def test_split_and_stats(tmp_path):
    f = write_jsonl(tmp_path / "d.jsonl", labelled(50))
    r = runner.invoke(app, ["data", "split", str(f), "--test", "0.2", "--stratify", "--seed", "4"])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "d.train.jsonl").exists() and "(10 examples)" in r.output
    r = runner.invoke(app, ["data", "stats", str(tmp_path / "d.test.jsonl"), "--json"])
    assert json.loads(r.output)["examples"] == 10
    r = runner.invoke(app, ["data", "stats", str(f)])
    assert r.exit_code == 0 and "billing" in r.output


def test_label_command_resumes(tmp_path, tiny_model):
    inputs = tmp_path / "in.txt"
    inputs.write_text("one\ntwo\n")
    out = tmp_path / "out.jsonl"
    out.write_text(
        json.dumps({"messages": [{"role": "user", "content": "one"}, {"role": "assistant", "content": "1"}]}) + "\n"
    )
    r = runner.invoke(
        app, ["data", "label", str(inputs), "--teacher", tiny_model, "--out", str(out), "--max-tokens", "2"]
    )
    assert r.exit_code == 0, r.output
    assert "1 already there" in r.output


@pytest.mark.slow  # 10k real examples: near-duplicate and leakage search take about 10 s on 2 cores
def test_banking77_csv_with_named_columns(tmp_path):
    train = needs_datasets("banking77", "train.csv")
    test = needs_datasets("banking77", "test.csv")
    r = runner.invoke(
        app,
        [
            "data",
            "validate",
            str(train),
            "--input-col",
            "text",
            "--output-col",
            "category",
            "--test",
            str(test),
            "--no-tokens",
            "--json",
        ],
    )
    assert r.exit_code == 0, r.output
    d = json.loads(r.output)
    assert d["n_examples"] == 10003 and len(d["labels"]) == 77
    assert d["task"] == "classification" and d["task_inferred"]
    assert d["leakage"]  # banking77's published test set repeats some training questions
    r = runner.invoke(app, ["data", "validate", str(train), "--no-tokens"])
    assert r.exit_code == 1 and "--input-col" in r.output
