"""A remote model pointing at our own server round-trips; the keys and usage commands work."""

from __future__ import annotations

from typer.testing import CliRunner

from ladder.cli.main import app


def test_remote_backend_round_trip(srv, tiny_model, monkeypatch):
    from ladder.models import service
    from ladder.models.types import ChatRequest

    monkeypatch.setenv("LADDER_TEST_REMOTE_KEY", srv.admin_key)
    out = CliRunner().invoke(
        app,
        [
            "models",
            "add-remote",
            "x",
            "--base-url",
            srv.v1,
            "--model",
            tiny_model,
            "--api-key-env",
            "LADDER_TEST_REMOTE_KEY",
        ],
    )
    assert out.exit_code == 0, out.output
    req = ChatRequest.of([{"role": "user", "content": "hello"}], max_tokens=5)
    via_remote = service.chat("x", req)
    direct = service.chat(tiny_model, req)
    assert via_remote.text == direct.text and via_remote.usage.completion_tokens == direct.usage.completion_tokens
    streamed = "".join(d.text for d in service.stream("x", req))
    assert streamed == direct.text


def test_keys_cli_create_list_revoke(ladder_home):
    from ladder.server import keys

    runner = CliRunner()
    out = runner.invoke(app, ["keys", "create", "--project", "acme", "--admin"])
    assert out.exit_code == 0, out.output
    secret = out.output.strip().splitlines()[-1]
    rec = keys.authenticate(secret)
    assert rec is not None and rec.project_name == "acme" and rec.admin
    listed = runner.invoke(app, ["keys", "list"])
    assert "acme" in listed.output and secret not in listed.output
    assert runner.invoke(app, ["keys", "revoke", rec.id]).exit_code == 0
    assert keys.authenticate(secret) is None
    assert runner.invoke(app, ["usage", "--by", "day"]).exit_code == 0


def test_first_serve_creates_one_admin_key_and_off_loopback_needs_keys(ladder_home, monkeypatch):
    import pytest

    from ladder.errors import InvalidInput
    from ladder.server import keys, run

    secret = run.prepare("127.0.0.1")
    assert secret and keys.authenticate(secret).admin
    assert run.prepare("127.0.0.1") is None  # printed once only
    monkeypatch.setenv("LADDER_SERVER_REQUIRE_KEYS", "0")
    with pytest.raises(InvalidInput):
        run.prepare("0.0.0.0")
