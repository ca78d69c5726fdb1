"""`ladder db migrate-to`: a SQLite install moves to PostgreSQL whole, and refuses a database in use."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from ladder.cli.main import app
from ladder.settings import reset_settings
from ladder.store.db import get_db, reset_dbs


@pytest.fixture
def sqlite_install(monkeypatch, fake_embedder):
    """A SQLite install with a project, a key, a file, a bot, usage and a searchable knowledge base."""
    monkeypatch.delenv("LADDER_DATABASE_URL", raising=False)
    reset_settings()
    reset_dbs()
    from ladder.knowledge import service as kb
    from ladder.pipelines import service as bots
    from ladder.server import keys
    from ladder.store import files
    from ladder.store.usage import UsageRecord, record

    _, secret = keys.create_key("acme", admin=True)
    acme = keys.project_by_name("acme")
    rec = files.create(b'{"q": "a"}\n', "t.jsonl", "eval", project_id=acme)
    bots.create_bot("helper", {"model": "smollm2-135m-instruct", "system_prompt": "Be brief."}, project_id=acme)
    record(UsageRecord(model="m", kind="chat", prompt_tokens=7, completion_tokens=3, project_id=acme))
    kb.create_kb("docs", project_id=acme)
    kb.add_document(
        "docs",
        "policy.jsonl",
        b'{"text": "Refunds take five days."}\n{"text": "Shipping is free over fifty euros."}\n',
        project_id=acme,
    )
    return {"secret": secret, "project": acme, "file": rec.id}


def _use(monkeypatch, url):
    monkeypatch.setenv("LADDER_DATABASE_URL", url)
    reset_settings()
    reset_dbs()


def test_everything_reads_the_same_after_the_move(sqlite_install, postgres, monkeypatch):
    from ladder.knowledge import service as kb
    from ladder.pipelines import service as bots
    from ladder.server import keys
    from ladder.store import files
    from ladder.store.usage import summary

    acme = sqlite_install["project"]
    before = kb.search(["docs"], "how long do refunds take", k=1, project_id=acme)
    url = postgres.create(migrated=False)
    try:
        out = CliRunner().invoke(app, ["db", "migrate-to", url])
        assert out.exit_code == 0, out.output
        assert "copied" in out.output and "kb_chunks: 2" in out.output
        _use(monkeypatch, url)
        assert keys.authenticate(sqlite_install["secret"]).project_name == "acme"
        assert files.resolve_file(sqlite_install["file"], acme).read_bytes() == b'{"q": "a"}\n'
        assert bots.get_bot("helper", project_id=acme).config.system_prompt == "Be brief."
        assert {r["key"]: r["prompt_tokens"] for r in summary(acme)}["m"] == 7
        after = kb.search(["docs"], "how long do refunds take", k=1, project_id=acme)
        assert [h.text for h in after] == [h.text for h in before] == ["Refunds take five days."]
        # New rows continue after the copied ids.
        kb.add_document("docs", "returns.txt", b"Returns need a receipt.", project_id=acme)
        assert len(kb.list_docs("docs", project_id=acme)) == 3
        assert (
            kb.search(["docs"], "do returns need a receipt", k=1, project_id=acme)[0].text == "Returns need a receipt."
        )
    finally:
        reset_dbs()
        postgres.drop(url)


def test_files_go_to_the_blob_store_and_home_paths_to_the_shared_dir(
    sqlite_install, postgres, monkeypatch, tmp_path, ladder_home
):
    from ladder.models import registry
    from ladder.store import files

    acme = sqlite_install["project"]
    adapter = ladder_home / "tuning" / "ftjob-x" / "adapter"
    adapter.mkdir(parents=True)
    registry.add_tuned("ft:base:x:ftjob-x", "smollm2-135m-instruct", adapter, acme, {})
    url = postgres.create(migrated=False)
    blobs, shared = tmp_path / "s3-like", tmp_path / "mnt" / "shared"
    monkeypatch.setenv("LADDER_BLOB_URL", blobs.as_uri())
    reset_settings()
    try:
        out = CliRunner().invoke(app, ["db", "migrate-to", url, "--shared-dir", str(shared)])
        assert out.exit_code == 0, out.output
        _use(monkeypatch, url)
        rec = files.resolve_file(sqlite_install["file"], acme)
        assert rec.blob_path.startswith(blobs.as_uri()) and rec.read_bytes() == b'{"q": "a"}\n'
        row = get_db().one("SELECT adapter_path FROM models WHERE name=?", ("ft:base:x:ftjob-x",))
        assert row[0] == str(shared / "tuning" / "ftjob-x" / "adapter")
    finally:
        reset_dbs()
        postgres.drop(url)


def test_a_database_in_use_is_refused_and_left_as_it_was(sqlite_install, postgres_url, monkeypatch):
    from ladder.server import keys

    _use(monkeypatch, postgres_url)
    keys.create_key("other")
    monkeypatch.delenv("LADDER_DATABASE_URL")
    reset_settings()
    reset_dbs()
    out = CliRunner().invoke(app, ["db", "migrate-to", postgres_url])
    assert out.exit_code == 1 and "not empty" in out.output and "api_keys" in out.output
    _use(monkeypatch, postgres_url)
    assert [p["name"] for p in keys.list_projects()] == ["default", "other"]


def test_bad_targets_get_a_clear_error(sqlite_install):
    out = CliRunner().invoke(app, ["db", "migrate-to", "mysql://x"])
    assert out.exit_code == 1 and "postgresql://" in out.output
    out = CliRunner().invoke(app, ["db", "migrate-to", "postgresql://nobody@127.0.0.1:1/none"])
    assert out.exit_code == 1 and "cannot connect" in out.output
