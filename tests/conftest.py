"""Shared fixtures: a fresh LADDER_HOME per test, and a tiny random Llama with SmolLM2's tokenizer."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

pytest_plugins = ["tests.ui.fixtures", "tests.postgres_fixtures", "tests.queue.ingest_helpers"]

DATASETS = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"


def _reset() -> None:
    from ladder.models import service
    from ladder.settings import reset_settings
    from ladder.store.db import reset_dbs

    reset_settings()
    reset_dbs()
    if service._cache is not None:
        # Keep loaded weights across tests only for models that do not depend on LADDER_HOME.
        service._cache.drop(lambda key: "tiny" in str(key[0]) or str(key[0]).startswith("ft:"))


@pytest.fixture(scope="session")
def shared_cache_dir(tmp_path_factory) -> Path:
    """Derived files (the de-quantised SmolLM2) shared by all tests of a session: converted once."""
    return tmp_path_factory.mktemp("ladder-cache")


@pytest.fixture(autouse=True)
def ladder_home(tmp_path, monkeypatch, shared_cache_dir, database_url) -> Path:
    """Every test gets its own empty data directory and database (derived caches are shared)."""
    home = tmp_path / "ladder-home"
    monkeypatch.setenv("LADDER_HOME", str(home))
    if database_url:
        monkeypatch.setenv("LADDER_DATABASE_URL", database_url)
    else:
        monkeypatch.delenv("LADDER_DATABASE_URL", raising=False)
    monkeypatch.setenv("LADDER_CACHE_DIR", str(shared_cache_dir))
    _reset()
    yield home
    _reset()


@pytest.fixture(scope="session")
def smol_tokenizer_dir(tmp_path_factory) -> Path:
    """SmolLM2's tokenizer (with its chat template), read from the packaged GGUF once per session."""
    from transformers import AutoTokenizer

    from ladder.models.packaged import smollm2_gguf

    gguf = smollm2_gguf()
    tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    out = tmp_path_factory.mktemp("smol-tokenizer")
    tok.save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, smol_tokenizer_dir) -> Path:
    """A randomly initialised 2-layer Llama (hidden 64) with SmolLM2's tokenizer, saved as an HF dir."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tok = AutoTokenizer.from_pretrained(smol_tokenizer_dir)
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
        tie_word_embeddings=True,
    )
    model = LlamaForCausalLM(config)
    out = tmp_path_factory.mktemp("tiny-llama")
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out


@pytest.fixture
def tiny_model(tiny_model_dir) -> str:
    """The tiny Llama registered under the name `tiny-llama` in this test's LADDER_HOME."""
    from ladder.models import registry

    registry.add_local("tiny-llama", tiny_model_dir)
    return "tiny-llama"


def needs_datasets(*parts: str) -> Path:
    """The path of a shared dataset, or skip the test saying why."""
    path = DATASETS.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} is absent (the shared datasets are not in a fresh clone)")
    return path
