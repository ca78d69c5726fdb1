"""A backend that cannot serve the model is an InvalidInput before an eval starts, never a crash or errors mid-run."""

from __future__ import annotations

import pytest

from ladder.errors import InvalidInput
from ladder.evals.runner import run_eval
from ladder.evals.testset import TestItem
from ladder.pipelines.config import PipelineConfig
from ladder.pipelines.pipeline import Pipeline

ITEMS = [TestItem(messages=[{"role": "user", "content": f"q{i}"}], reference="a") for i in range(3)]


def test_an_unknown_backend_in_a_pipeline_config_is_refused_at_config_time(tiny_model):
    with pytest.raises(InvalidInput) as e:
        PipelineConfig.from_dict({"model": tiny_model, "backend": "vllm"})
    assert e.value.param == "backend" and "'vllm'" in e.value.message


def test_a_backend_the_model_lacks_stops_the_eval_before_any_item(tiny_model):
    seen: list[int] = []
    pipe = Pipeline(PipelineConfig(model=tiny_model, backend="llamacpp", max_tokens=2))  # an HF dir: no GGUF
    with pytest.raises(InvalidInput) as e:
        run_eval(pipe, ITEMS, store=False, on_progress=seen.append)
    assert e.value.param == "backend" and "GGUF" in e.value.message and seen == []
    with pytest.raises(InvalidInput) as e:
        run_eval(Pipeline(PipelineConfig(model=tiny_model, max_tokens=2)), ITEMS, backend="vllm", store=False)
    assert e.value.param == "backend" and "'vllm'" in e.value.message
