"""The re-quantised serving copy: written once, in the asked quantisation, answering like its source."""

from __future__ import annotations

import numpy as np
import pytest

from ladder.models.registry import ModelSpec, builtin_models
from ladder.models.serving_copy import copy_path, serving_gguf


@pytest.fixture(scope="module")
def tiny_gguf(tiny_model_dir, tmp_path_factory):
    from transformers import AutoTokenizer, LlamaForCausalLM

    from ladder.models.gguf_writer import write_llama_gguf

    path = tmp_path_factory.mktemp("tiny-src") / "tiny-f32.gguf"
    model, tok = LlamaForCausalLM.from_pretrained(tiny_model_dir), AutoTokenizer.from_pretrained(tiny_model_dir)
    write_llama_gguf(model, tok, path, quant="f32")
    return path


def _types(path) -> set[str]:
    from gguf import GGUFReader

    return {t.tensor_type.name for t in GGUFReader(path).tensors if len(t.shape) > 1}


def _last_logits(path, tokens: list[int]) -> np.ndarray:
    from llama_cpp import Llama

    llm = Llama(model_path=str(path), n_ctx=256, n_threads=1, verbose=False, logits_all=True)
    try:
        llm.eval(tokens)
        return np.array(llm.scores[len(tokens) - 1], dtype=np.float64)
    finally:
        llm.close()


def test_a_spec_without_serve_as_is_served_from_its_own_file(tiny_gguf):
    spec = ModelSpec("tiny-gguf", "llamacpp", path=str(tiny_gguf))
    assert serving_gguf(spec) == tiny_gguf


def test_the_copy_is_written_once_in_the_asked_quantisation_and_answers_like_its_source(tiny_gguf, one_llama_thread):
    spec = ModelSpec("tiny-gguf", "llamacpp", path=str(tiny_gguf), meta={"serve_as": "q8_0"})
    before = tiny_gguf.read_bytes()
    out = serving_gguf(spec)
    assert out == copy_path(spec, "q8_0") and out.exists() and out != tiny_gguf
    assert _types(tiny_gguf) == {"F32"} and _types(out) == {"Q8_0"}
    assert tiny_gguf.read_bytes() == before
    stamp = out.stat().st_mtime_ns
    assert serving_gguf(spec) == out and out.stat().st_mtime_ns == stamp  # not written again

    tokens = [1, 520, 2245, 314, 253, 1345, 30, 7042, 28]
    a, b = _last_logits(tiny_gguf, tokens), _last_logits(out, tokens)
    assert np.corrcoef(a, b)[0, 1] > 0.999
    assert np.abs(a - b).max() < 0.05 * (a.max() - a.min())

    from ladder.models.llamacpp_backend import LlamaCppBackend

    backend = LlamaCppBackend(spec)
    assert backend.llm.model_path == str(out)


def test_the_builtin_model_is_served_as_q8_0_and_scored_as_f16():
    (smol,) = builtin_models()
    assert smol.meta["serve_as"] == "q8_0" and smol.meta["score_as"] == "f16"


def test_a_label_pipeline_answering_by_scoring_runs_on_the_scoring_copy(tiny_gguf, one_llama_thread):
    from ladder.models import service
    from ladder.models.registry import _insert
    from ladder.pipelines.config import PipelineConfig
    from ladder.pipelines.pipeline import Pipeline
    from ladder.store.db import get_db

    spec = ModelSpec("tiny-gguf-scored", "llamacpp", path=str(tiny_gguf), meta={"serve_as": "q8_0", "score_as": "f16"})
    _insert(spec, get_db())
    served = service.open_backend(spec.name)
    scorer = service.open_backend(spec.name, scoring=True)
    assert served.llm.model_path == str(copy_path(spec, "q8_0"))
    assert scorer.llm.model_path == str(copy_path(spec, "f16")) and _types(copy_path(spec, "f16")) == {"F16"}

    pipe = Pipeline(
        PipelineConfig.from_dict({"model": spec.name, "parser": {"kind": "label", "labels": ["yes", "no"]}})
    )
    (result,) = pipe.run_batch(["Is it raining?"])
    assert scorer.llm.n_tokens > 0 and served.llm.n_tokens == 0  # the F16 copy answered, the Q8_0 one ran nothing
    assert result.text in {"yes", "no"} and abs(sum(result.label_probs.values()) - 1) < 1e-4
