"""Fixtures shared by the model tests."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def one_llama_thread():
    """One llama.cpp thread (LADDER_THREADS=1): two would spin against whatever else shares the cores."""
    from ladder.settings import reset_settings

    mp = pytest.MonkeyPatch()
    mp.setenv("LADDER_THREADS", "1")
    reset_settings()
    yield
    mp.undo()
    reset_settings()
