"""A bot stored before a check that now refuses one of its settings: a clear error, and an edit mends it."""

from __future__ import annotations

import json

import pytest

from ladder.errors import InvalidInput
from ladder.pipelines import service
from ladder.pipelines.config import PipelineConfig
from ladder.store.db import get_db


def _store_raw(name: str, config: dict) -> None:
    """What an older ladder wrote: the row as it was, without today's checks."""
    get_db().execute("UPDATE bots SET config=? WHERE project_id='proj-default' AND name=?", (json.dumps(config), name))


def test_a_refused_stored_setting_names_the_bot_and_an_edit_mends_it(tiny_model):
    service.create_bot("legacy", PipelineConfig(model=tiny_model, max_tokens=16))
    raw = service.get_bot("legacy").config.as_dict()
    _store_raw("legacy", {**raw, "max_tokens": -5})

    with pytest.raises(InvalidInput) as e:
        service.get_bot("legacy")
    assert "'legacy' version 1" in e.value.message and "max_tokens" in e.value.message
    assert "ladder bots edit legacy" in e.value.message

    mended = service.edit_bot("legacy", {"max_tokens": 32})
    assert mended.version == 2 and mended.config.max_tokens == 32
    assert service.get_bot("legacy").config.max_tokens == 32
    assert [b.name for b in service.list_bots()] == ["legacy"]


def test_an_unknown_bot_still_lists_the_known_names_when_one_no_longer_loads(tiny_model):
    service.create_bot("legacy", PipelineConfig(model=tiny_model))
    _store_raw("legacy", {**service.get_bot("legacy").config.as_dict(), "max_tokens": -5})
    with pytest.raises(Exception) as e:
        service.get_bot("nope")
    assert "bots: legacy" in str(e.value)
