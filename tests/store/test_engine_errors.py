"""A wrong or unreachable LADDER_DATABASE_URL is a clear error naming the setting, and fails fast."""

from __future__ import annotations

import time

import pytest

from ladder.errors import StoreUnavailable
from ladder.store.db import open_database


def test_a_url_of_another_engine_is_refused(tmp_path):
    with pytest.raises(StoreUnavailable, match="LADDER_DATABASE_URL must start with postgresql://"):
        open_database("mysql://root@db/ladder", tmp_path / "x.db")


def test_an_unreachable_database_says_where_and_why_without_the_password(tmp_path):
    start = time.monotonic()
    with pytest.raises(StoreUnavailable) as info:
        open_database("postgresql://ladder:s3cret@127.0.0.1:1/ladder", tmp_path / "x.db")
    assert time.monotonic() - start < 15
    assert "cannot connect" in info.value.message and "Connection refused" in info.value.message
    assert "s3cret" not in info.value.message and "port=1" in info.value.message
