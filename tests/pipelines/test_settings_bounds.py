"""A bot's settings are checked when it is created (CLI and API alike), never first at answer time."""

from __future__ import annotations

import pytest

from ladder.errors import InvalidInput
from ladder.models.packaged import SMOLLM2_NAME
from ladder.models.types import GenerationParams
from ladder.pipelines import service
from ladder.pipelines.config import PipelineConfig


def test_one_stop_string_is_one_stop_sequence():
    assert PipelineConfig(model="m", stop="abc").stop == ["abc"]
    assert PipelineConfig(model="m", stop="abc").params.stop == ["abc"]
    assert GenerationParams(stop="END").stop == ["END"]
    for bad in (["x"] * 5, [""], ["x" * 201], [3], 7):
        with pytest.raises(InvalidInput) as e:
            PipelineConfig(model="m", stop=bad)
        assert e.value.param == "stop"


@pytest.mark.parametrize(
    "field,value",
    [
        ("max_tokens", -5),
        ("max_tokens", 0),
        ("max_tokens", 2**70),
        ("max_tokens", "256"),
        ("max_tokens", True),
        ("temperature", -0.1),
        ("temperature", 2.5),
        ("temperature", float("nan")),
        ("top_p", 0),
        ("top_p", 1.5),
        ("seed", 2**64),
        ("retrieval_k", 0),
        ("retrieval_k", 10**6),
        ("few_shot_k", -1),
        ("retrieval_threshold", 3),
        ("backend", "cuda"),
        ("backend", "Torch"),
        ("system_prompt", 12),
        ("kbs", "kb-one"),
    ],
)
def test_out_of_range_settings_are_refused_naming_the_field(field, value):
    with pytest.raises(InvalidInput) as e:
        PipelineConfig(model="m", **{field: value})
    assert e.value.param == field


def test_backend_must_fit_the_model_at_creation():
    # the packaged SmolLM2 is a local GGUF: "remote" would send its prompts to the SDK's default URL
    with pytest.raises(InvalidInput, match="local model") as e:
        service.create_bot("b", {"model": SMOLLM2_NAME, "backend": "remote"})
    assert e.value.param == "backend"
    bot = service.create_bot("b", {"model": SMOLLM2_NAME, "backend": "llamacpp"})
    with pytest.raises(InvalidInput, match="local model"):
        service.edit_bot("b", {"backend": "remote"})
    assert service.get_bot("b").version == bot.version  # nothing half-written


def test_versions_beyond_sqlite_are_refused_not_overflowed():
    service.create_bot("b", {"model": SMOLLM2_NAME})
    for ref in ("b@9223372036854775808", "b@" + "9" * 5000):
        with pytest.raises(InvalidInput, match="out of range"):
            service.get_bot(ref)
    with pytest.raises(InvalidInput, match="out of range"):
        service.get_bot("b", 2**63)
    assert service.get_bot("b@1").version == 1
