"""The GGUF file llama.cpp serves for a model: its own file, or a re-quantised copy made once.

The packaged SmolLM2 GGUF is Q4_1, and llama.cpp's CPU kernels evaluate prompts in Q4_1 at two
thirds of the speed of Q8_0. Measured here (2 cores, a 700-token prompt, flash attention, on
2026-12-03): Q4_1 220 prompt tokens/s and 86 decoded tokens/s; Q8_0 339 and 81; F16 426 and 56;
F32 322 and 28. So the built-in model is served as Q8_0 (`meta["serve_as"]`): 1.5x faster
prompts for 6% slower decoding and 47 MB more. A label answered by scoring decodes nothing
(label_scores), so it is scored on an F16 copy (`meta["score_as"]`, a backend of its own, 271 MB):
the demo's RAG rung took 46 s instead of 63 on 40 items. llama.cpp's own quantizer writes each
copy (each Q4_1 block de-quantised, then rounded), with the source's metadata and tokenizer, in
about a second. On 30 few-shot prompts of the demo, label probabilities moved by at most 0.029
from the Q4_1 file's on F16 and 0.037 on Q8_0 (Q4_1's kernels round activations to 8 bits), and
both picked the same label as Q4_1 on 29 of them.

A spec asks for copies with `meta["serve_as"]` and `meta["score_as"]` (each one of `FTYPES`);
other GGUFs are served as they are.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

from ladder.errors import BackendError
from ladder.models.hf import source_key
from ladder.models.registry import ModelSpec
from ladder.settings import get_settings

log = logging.getLogger(__name__)
_lock = threading.Lock()
# The file types a copy can be written in: llama-cpp-python's names for enum llama_ftype.
FTYPES = {"f32": "LLAMA_FTYPE_ALL_F32", "f16": "LLAMA_FTYPE_MOSTLY_F16", "q8_0": "LLAMA_FTYPE_MOSTLY_Q8_0"}


def copy_path(spec: ModelSpec, quant: str) -> Path:
    """Where the copy of `spec`'s GGUF in `quant` lives: keyed by the source file, so a new package makes a new copy."""
    src = Path(spec.path)
    return get_settings().cache_dir / "gguf" / f"{src.stem}-{source_key(src)}-{quant}.gguf"


def serving_gguf(spec: ModelSpec) -> Path:
    """The GGUF to load for `spec`, writing its re-quantised copy first if it asks for one and has none yet."""
    quant = (spec.meta or {}).get("serve_as")
    if not quant:
        return Path(spec.path)
    if quant not in FTYPES:
        raise BackendError(f"{spec.name}: serve_as must be one of {', '.join(FTYPES)}, not {quant!r}")
    out = copy_path(spec, quant)
    if out.exists():
        return out
    with _lock:
        if not out.exists():
            log.info("writing the %s serving copy of %s (once) to %s", quant, spec.name, out)
            requantize(Path(spec.path), out, quant)
    return out


def requantize(src: Path, out: Path, quant: str) -> None:
    """`src` re-written by llama.cpp with every weight matrix in `quant`; atomic (a temp file, then rename)."""
    import ctypes

    import llama_cpp
    from llama_cpp._utils import suppress_stdout_stderr

    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = getattr(llama_cpp, FTYPES[quant])
    params.allow_requantize = True  # the source is quantised already
    params.quantize_output_tensor = True
    params.pure = True  # no mixture: llama.cpp would keep some tensors in other types
    params.nthread = get_settings().threads or os.cpu_count() or 1
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f"{out.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        # The quantizer reports every tensor on stderr.
        with suppress_stdout_stderr(disable=False):
            failed = llama_cpp.llama_model_quantize(str(src).encode(), str(tmp).encode(), ctypes.byref(params))
        if failed:
            raise BackendError(f"llama.cpp could not write a {quant} copy of {src}")
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
