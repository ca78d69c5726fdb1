"""Hugging Face form of a local model: a GGUF de-quantised once and cached as safetensors, and its tokenizer."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import json
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path

from ladder.models.registry import ModelSpec, get_model
from ladder.settings import get_settings
from ladder.store.blobs import atomic_dir, commit_dir
from ladder.store.db import DEFAULT_PROJECT

_lock = threading.Lock()
COMPLETE = "ladder-complete.json"


@contextlib.contextmanager
def quiet_loading() -> Iterator[None]:
    """Loading weights without transformers' per-tensor progress bar or its deprecation notices in
    the middle of the CLI's own output (the CLI shows what it is doing itself)."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
            yield
    finally:
        hf_logging.enable_progress_bar()


def source_key(path: Path) -> str:
    """A key for files derived from `path`: a changed or replaced file (a new package) gets new ones."""
    st = path.stat()
    return hashlib.sha256(f"{path.resolve()}:{st.st_size}:{st.st_mtime_ns}".encode()).hexdigest()[:16]


def _gguf_cache_dir(gguf: Path) -> Path:
    return get_settings().cache_dir / "hf" / f"{gguf.stem}-{source_key(gguf)}"


@contextlib.contextmanager
def _gguf_parsed_once() -> Iterator[None]:
    """gguf's file reader and tensor-name map, made once each while transformers converts a GGUF.

    transformers (5.24) parses the file three times (for the config, the tokenizer and the
    weights; each parse walks the 100k strings of SmolLM2's vocabulary, about 3 s) and builds
    gguf's tensor-name map once per module of the model (397 times, 6 s), both from `gguf`'s
    module attributes at call time: 26 s of a first run, where one parse and one map are needed.
    Both are memoised here for the conversion; the library has no option for it.
    """
    import gguf

    reader, name_map = gguf.GGUFReader, gguf.get_tensor_name_map
    readers: dict = {}

    def read_once(path, mode="r"):
        key = (str(path), mode)
        if key not in readers:
            readers[key] = reader(path, mode)
        return readers[key]

    gguf.GGUFReader, gguf.get_tensor_name_map = read_once, functools.lru_cache(maxsize=None)(name_map)
    try:
        yield
    finally:
        gguf.GGUFReader, gguf.get_tensor_name_map = reader, name_map


def hf_dir(spec: ModelSpec, project_id: str = DEFAULT_PROJECT) -> Path:
    """The HF model directory for a local spec (for a tuned model: its base model's directory).

    A GGUF is converted on first use (transformers de-quantises it, about 10 s for SmolLM2)
    and saved as safetensors under the data dir, so later loads take well under a second.
    """
    if spec.is_tuned:
        return hf_dir(get_model(spec.base_model, project_id), project_id)
    if spec.backend == "remote":
        raise ValueError(f"{spec.name} is a remote model and has no local weights")
    path = Path(spec.path)
    if path.is_dir():
        return path
    out = _gguf_cache_dir(path)
    if (out / COMPLETE).exists():
        return out
    with _lock:
        if (out / COMPLETE).exists():
            return out
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        with quiet_loading(), _gguf_parsed_once():
            # transformers' de-quantisation bar is a plain tqdm on stderr that no setting turns off.
            with contextlib.redirect_stderr(io.StringIO()):
                tok = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
                model = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name, dtype=torch.float32)
            # The weights are de-quantised to float32 on load; drop the GGUF quantizer marker so
            # transformers saves them as the plain model they now are.
            model.hf_quantizer = None
            if hasattr(model.config, "quantization_config"):
                del model.config.quantization_config
            tmp = atomic_dir(out)
            model.save_pretrained(tmp, safe_serialization=True)
            tok.save_pretrained(tmp)
        (tmp / COMPLETE).write_text(json.dumps({"source": str(path)}))
        commit_dir(tmp, out)
    return out


def load_tokenizer(name: str, project_id: str = DEFAULT_PROJECT):
    """The model's own tokenizer (with its chat template) for a registered local model name."""
    from transformers import AutoTokenizer

    spec = get_model(name, project_id)
    return AutoTokenizer.from_pretrained(hf_dir(spec, project_id))
