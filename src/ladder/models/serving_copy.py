"""The GGUF file llama.cpp serves for a model: its own file, or a re-quantised copy made once.

The packaged SmolLM2 GGUF is Q4_1, and llama.cpp's CPU kernels evaluate prompts in Q4_1 at 60% of
the speed of Q8_0. Measured here (2 cores, a 700-token prompt, flash attention): Q4_1 278 prompt
tokens/s and 134 decoded tokens/s; Q8_0 466 and 125; F16 584 and 86; F32 472 and 52. Every
label rung, RAG answer and chat turn is dominated by its prompt, so the built-in model is served
as Q8_0: 1.7x faster prompts for 7% slower decoding and 47 MB more. The copy is written from
the de-quantised weights the platform already keeps for training (`hf.hf_dir`), so it holds the
Q4_1 values to within Q8_0's rounding (a 255th of each block's largest weight).

A spec asks for a copy with `meta["serve_as"]` (a quantisation `gguf_writer` writes); other GGUFs
are served as they are.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from ladder.models.hf import hf_dir, quiet_loading, source_key
from ladder.models.registry import ModelSpec
from ladder.settings import get_settings

log = logging.getLogger(__name__)
_lock = threading.Lock()


def copy_path(spec: ModelSpec, quant: str) -> Path:
    """Where the copy of `spec`'s GGUF in `quant` lives: keyed by the source file, so a new package makes a new copy."""
    src = Path(spec.path)
    return get_settings().cache_dir / "gguf" / f"{src.stem}-{source_key(src)}-{quant}.gguf"


def serving_gguf(spec: ModelSpec) -> Path:
    """The GGUF to load for `spec`, writing its re-quantised copy first if it asks for one and has none yet."""
    quant = (spec.meta or {}).get("serve_as")
    if not quant:
        return Path(spec.path)
    out = copy_path(spec, quant)
    if out.exists():
        return out
    with _lock:
        if out.exists():
            return out
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from ladder.models.gguf_writer import write_llama_gguf

        log.info("writing the %s serving copy of %s (once) to %s", quant, spec.name, out)
        base = hf_dir(spec)
        with quiet_loading():
            model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
            tok = AutoTokenizer.from_pretrained(base)
        out.parent.mkdir(parents=True, exist_ok=True)
        # Atomic (temp file, then rename): a process that loses a race rewrites the same bytes.
        write_llama_gguf(model, tok, out, quant=quant, tokenizer_gguf=Path(spec.path), name=spec.name)
    return out
