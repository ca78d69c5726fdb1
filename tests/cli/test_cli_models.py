"""`ladder models …` and `ladder chat` as a user runs them."""

from __future__ import annotations

import sys

import pytest
from typer.testing import CliRunner

from ladder.cli.main import app, main

runner = CliRunner()


def run_main(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    """The real entry point (with its error handling), as the console script calls it."""
    monkeypatch.setattr(sys, "argv", ["ladder", *args])
    code = 0
    try:
        main()
    except SystemExit as e:
        code = e.code or 0
    out = capsys.readouterr()
    return code, out.out, out.err


def test_help_lists_the_areas():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("models", "chat", "demo"):
        assert command in result.output


def test_models_add_list_and_remove(tiny_model_dir):
    assert runner.invoke(app, ["models", "add", "mine", str(tiny_model_dir)]).exit_code == 0
    r = runner.invoke(
        app,
        [
            "models",
            "add-remote",
            "far",
            "--base-url",
            "http://127.0.0.1:9/v1",
            "--model",
            "m",
            "--api-key-env",
            "FAR_KEY",
        ],
    )
    assert r.exit_code == 0
    listing = runner.invoke(app, ["models", "list"], env={"COLUMNS": "200"}).output
    assert "smollm2-135m-instruct" in listing and "llamacpp" in listing
    assert "mine" in listing and "torch" in listing and "http://127.0.0.1:9/v1 (m)" in listing
    assert runner.invoke(app, ["models", "remove", "far"]).exit_code == 0
    assert "far" not in runner.invoke(app, ["models", "list"], env={"COLUMNS": "200"}).output


def test_chat_once_streams_an_answer(tiny_model):
    r = runner.invoke(app, ["chat", tiny_model, "-m", "Hello", "--max-tokens", "5", "--system", "Be brief"])
    assert r.exit_code == 0, r.output
    assert "tokens in" in r.output  # timing line


def test_interactive_chat_keeps_history(tiny_model):
    r = runner.invoke(app, ["chat", tiny_model, "--max-tokens", "3"], input="Hi\nAnd then?\n\n")
    assert r.exit_code == 0, r.output
    assert r.output.count("model>") == 2


def test_errors_are_one_clear_line(monkeypatch, capsys):
    code, _, err = run_main(monkeypatch, capsys, "chat", "gpt-9", "-m", "hi")
    assert code == 1
    assert "error: unknown model 'gpt-9'; available: smollm2-135m-instruct" in err
    assert "Traceback" not in err


@pytest.mark.parametrize("bad", [["--max-tokens", "0"], ["--temperature", "3"]])
def test_bad_generation_settings_are_rejected(tiny_model, monkeypatch, capsys, bad):
    code, _, err = run_main(monkeypatch, capsys, "chat", tiny_model, "-m", "hi", *bad)
    assert code == 1 and "error:" in err
