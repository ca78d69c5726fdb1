"""Export a tuned model: a merged Hugging Face directory, or a GGUF (F16/Q8_0) for the llama.cpp backend."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from ladder.errors import InvalidInput
from ladder.models import registry
from ladder.models.hf import hf_dir, quiet_loading
from ladder.settings import get_settings
from ladder.store.blobs import atomic_dir, commit_dir
from ladder.store.db import DEFAULT_PROJECT

QUANTS = ("f16", "q8_0", "f32")


def _default_out(name: str) -> Path:
    return get_settings().shared_dir / "exports" / re.sub(r"[^A-Za-z0-9._-]+", "_", name)


def merged_model(name: str, project_id: str = DEFAULT_PROJECT):
    """(model with the LoRA merged into float32 weights, tokenizer, spec)."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    spec = registry.get_model(name, project_id)
    if spec.backend == "remote":
        raise InvalidInput(f"{name} is a remote model; only local models can be exported", param="model")
    base_dir = hf_dir(spec, project_id)
    adapter = registry.local_adapter(spec).adapter_path
    with quiet_loading():
        model = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32)
        if adapter:
            model = PeftModel.from_pretrained(model, adapter).merge_and_unload()
    model.eval()
    return model, AutoTokenizer.from_pretrained(base_dir), spec


def export_merged(name: str, out: Path | None = None, project_id: str = DEFAULT_PROJECT) -> Path:
    """A plain HF model directory (safetensors + tokenizer with its chat template), written atomically."""
    model, tok, _ = merged_model(name, project_id)
    final = Path(out) if out else _default_out(name) / "merged"
    tmp = atomic_dir(final)
    try:
        model.save_pretrained(tmp, safe_serialization=True)
        tok.save_pretrained(tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    commit_dir(tmp, final)
    return final


def root_gguf(spec, project_id: str = DEFAULT_PROJECT) -> Path | None:
    """The GGUF a model descends from (its tokenizer metadata is copied from there), if any."""
    while spec.base_model:
        spec = registry.get_model(spec.base_model, project_id)
    return Path(spec.path) if spec.is_gguf else None


def export_gguf(
    name: str, out: Path | None = None, *, quant: str = "q8_0", project_id: str = DEFAULT_PROJECT, register: bool = True
) -> Path:
    """Write the merged model as a llama-architecture GGUF and attach it to the model for llama.cpp."""
    from ladder.models.gguf_writer import write_llama_gguf

    if quant not in QUANTS:
        raise InvalidInput(f"--quant must be one of {', '.join(QUANTS[:2])}", param="quant")
    model, tok, spec = merged_model(name, project_id)
    if model.config.model_type != "llama":
        raise InvalidInput(f"GGUF export supports the Llama architecture; {name} is {model.config.model_type}")
    out_dir = Path(out) if out else _default_out(name)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"model-{quant}.gguf"
    write_llama_gguf(model, tok, path, quant=quant, tokenizer_gguf=root_gguf(spec, project_id), name=name)
    if register and spec.adapter_path:
        registry.set_gguf(name, path)
    return path
