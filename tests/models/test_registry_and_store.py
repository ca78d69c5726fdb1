"""Registry, migrations, ids, files and the usage ledger."""

from __future__ import annotations

import re

import pytest

from ladder.errors import Conflict, InvalidInput, NotFound
from ladder.ids import new_id
from ladder.models import registry
from ladder.settings import Price, get_settings
from ladder.store import files
from ladder.store.db import get_db
from ladder.store.migrations import migrations
from ladder.store.usage import UsageRecord, record, summary


def test_migrations_are_recorded_and_applied_once(ladder_home):
    db = get_db()
    numbers = [r["number"] for r in db.query("SELECT number FROM schema_migrations ORDER BY number")]
    assert numbers == [n for n, _, _ in migrations(db.engine)] and numbers
    if db.engine == "sqlite":
        assert db.one("PRAGMA journal_mode")[0] == "wal"
    assert db.migrate() == []  # a second process start applies nothing


def test_ids_look_like_openai_ids():
    assert re.fullmatch(r"ftjob-[A-Za-z0-9]{24}", new_id("ftjob"))
    assert new_id("file") != new_id("file")
    with pytest.raises(ValueError):
        new_id("nope")


def test_default_model_is_the_packaged_gguf():
    spec = registry.get_model("smollm2-135m-instruct")
    assert spec.backend == "llamacpp" and spec.path.endswith(".gguf") and spec.size_bytes() > 50e6


def test_unknown_model_lists_the_available_ones():
    with pytest.raises(NotFound, match="unknown model 'gpt-9'; available: smollm2-135m-instruct"):
        registry.get_model("gpt-9")


def test_register_local_remote_and_reject_bad_input(tiny_model_dir, tmp_path):
    registry.add_local("mine", tiny_model_dir)
    registry.add_remote("far", "http://127.0.0.1:9/v1/", "llama3", api_key_env="X_KEY")
    names = [m.name for m in registry.list_models()]
    assert names == ["smollm2-135m-instruct", "mine", "far"]
    assert registry.get_model("mine").backend == "torch"
    assert registry.get_model("far").base_url == "http://127.0.0.1:9/v1"
    with pytest.raises(Conflict):
        registry.add_local("mine", tiny_model_dir)
    with pytest.raises(InvalidInput, match="no such file"):
        registry.add_local("x", tmp_path / "missing.gguf")
    (tmp_path / "notes.txt").write_text("hi")
    with pytest.raises(InvalidInput, match="expected a .gguf file"):
        registry.add_local("x", tmp_path / "notes.txt")
    with pytest.raises(InvalidInput, match="must start with http"):
        registry.add_remote("y", "ftp://host", "m")


def test_files_live_under_generated_ids_and_keep_the_users_name(ladder_home):
    rec = files.create(b'{"a": 1}\n', "../../etc/pass\x00wd", "fine-tune")
    assert rec.filename == "../../etc/passwd"  # shown as given (minus the NUL), never used as a path
    assert rec.blob_path.startswith(str(ladder_home)) and rec.id in rec.blob_path
    assert files.get(rec.id).read_bytes() == b'{"a": 1}\n'
    with pytest.raises(NotFound):
        files.get(rec.id, project_id="proj-other")
    files.delete(rec.id)
    with pytest.raises(NotFound):
        files.get(rec.id)


def test_usage_is_priced_from_the_price_table():
    get_settings().prices["priced"] = Price(input_per_1k=1.0, output_per_1k=2.0)
    record(UsageRecord(model="priced", kind="chat", prompt_tokens=500, completion_tokens=250))
    record(UsageRecord(model="priced", kind="chat", prompt_tokens=1500, completion_tokens=0))
    (row,) = summary(by="model")
    assert row["calls"] == 2 and row["cost_usd"] == pytest.approx(2.0 + 0.5)
    assert summary(project_id="proj-other") == []
