"""The queue tests' engine fixture: each runs on the suite's engine and on PostgreSQL in any case."""

from __future__ import annotations

import pytest

from ladder.store.db import get_db


@pytest.fixture(params=["engine under test", "postgresql"])
def engine(request, monkeypatch, tiny_model_dir):
    """The engine the suite runs on, and PostgreSQL in any case (a fresh database from `postgres_url`)."""
    if request.param == "postgresql":
        from ladder.settings import reset_settings
        from ladder.store.db import reset_dbs

        monkeypatch.setenv("LADDER_DATABASE_URL", request.getfixturevalue("postgres_url"))
        reset_settings()
        reset_dbs()
    from ladder.models import registry

    registry.add_local("tiny-llama", tiny_model_dir)
    yield get_db().engine
    from ladder.store.db import reset_dbs

    reset_dbs()
