"""The torch backend on a tiny random Llama: batching, stops, streaming, sampling, LoRA, validation."""

from __future__ import annotations

import pytest

from ladder.errors import ContextLengthExceeded, InvalidInput
from ladder.models import registry, service
from ladder.models.types import ChatRequest
from ladder.store.usage import summary

PROMPTS = ["Hello there", "What is the refund policy for a damaged router?", "a", "Tell me a story about cats"]


def req(text: str, **params) -> ChatRequest:
    params.setdefault("max_tokens", 12)
    return ChatRequest.of([{"role": "user", "content": text}], **params)


def test_greedy_is_deterministic_and_batch_equals_single(tiny_model):
    singles = [service.chat(tiny_model, req(p)) for p in PROMPTS]
    again = [service.chat(tiny_model, req(p)) for p in PROMPTS]
    batch = service.chat_batch(tiny_model, [req(p) for p in PROMPTS])
    assert [r.text for r in singles] == [r.text for r in again]
    # Left padding with correct positions and masks must not change any row's greedy output.
    assert [r.text for r in batch] == [r.text for r in singles]
    assert [r.usage.completion_tokens for r in batch] == [r.usage.completion_tokens for r in singles]
    assert all(r.usage.prompt_tokens > 5 for r in batch)


def test_max_tokens_gives_length_finish(tiny_model):
    r = service.chat(tiny_model, req("Hello", max_tokens=3))
    assert r.usage.completion_tokens <= 3
    if r.usage.completion_tokens == 3:
        assert r.finish_reason == "length"


def test_stop_sequence_cuts_output_in_chat_batch_and_stream(tiny_model):
    full = service.chat(tiny_model, req("Hello there", max_tokens=20)).text
    assert len(full) > 4
    stop = full[2:4]
    cut = full[: full.index(stop)]
    r = service.chat(tiny_model, req("Hello there", max_tokens=20, stop=[stop]))
    assert r.text == cut and r.finish_reason == "stop"
    streamed = "".join(d.text for d in service.stream(tiny_model, req("Hello there", max_tokens=20, stop=[stop])))
    assert streamed == cut
    b = service.chat_batch(tiny_model, [req("Hello there", max_tokens=20, stop=[stop]), req("a", stop=[stop])])
    assert b[0].text == cut


def test_stream_concatenates_to_chat_and_reports_usage(tiny_model):
    whole = service.chat(tiny_model, req("Tell me a story about cats", max_tokens=15))
    deltas = list(service.stream(tiny_model, req("Tell me a story about cats", max_tokens=15)))
    assert "".join(d.text for d in deltas) == whole.text
    assert deltas[-1].finish_reason == whole.finish_reason
    assert deltas[-1].usage.completion_tokens == whole.usage.completion_tokens


def test_closing_a_stream_early_stops_generation(tiny_model):
    gen = service.stream(tiny_model, req("Tell me a story", max_tokens=200))
    first = next(gen)
    gen.close()
    assert first.finish_reason is None


def test_seeded_sampling_is_reproducible_and_differs_from_greedy(tiny_model):
    a = service.chat(tiny_model, req("Hello", temperature=1.5, seed=7, max_tokens=16))
    b = service.chat(tiny_model, req("Hello", temperature=1.5, seed=7, max_tokens=16))
    c = service.chat(tiny_model, req("Hello", temperature=1.5, seed=8, max_tokens=16))
    greedy = service.chat(tiny_model, req("Hello", max_tokens=16))
    assert a.text == b.text
    assert len({a.text, c.text, greedy.text}) > 1


def test_bad_requests_fail_before_generation(tiny_model):
    with pytest.raises(InvalidInput, match="messages is empty"):
        service.chat(tiny_model, ChatRequest.of([]))
    with pytest.raises(InvalidInput, match="role is 'robot'"):
        service.chat(tiny_model, ChatRequest.of([{"role": "robot", "content": "hi"}]))
    with pytest.raises(ContextLengthExceeded, match="beyond the model's context of 2048"):
        service.chat(tiny_model, req("hi", max_tokens=5000))
    with pytest.raises(ContextLengthExceeded, match="shorten the messages"):
        service.chat(tiny_model, req("word " * 2100, max_tokens=10))
    assert summary() == []  # nothing ran, nothing metered


def test_every_call_is_metered(tiny_model):
    service.chat(tiny_model, req("Hello", max_tokens=4))
    service.chat_batch(tiny_model, [req("a", max_tokens=4), req("b", max_tokens=4)])
    list(service.stream(tiny_model, req("c", max_tokens=4)))
    (row,) = summary(by="model")
    assert row["key"] == tiny_model and row["calls"] == 4
    assert row["prompt_tokens"] > 0 and row["completion_tokens"] > 0 and row["cost_usd"] > 0


def test_lora_adapter_is_applied_without_touching_the_base(tiny_model, tiny_model_dir, tmp_path):
    import hashlib

    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    weights = tiny_model_dir / "model.safetensors"
    before = hashlib.sha256(weights.read_bytes()).hexdigest()
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    torch.manual_seed(1)
    cfg = LoraConfig(r=4, lora_alpha=64, target_modules=["q_proj", "v_proj", "o_proj"], init_lora_weights=False)
    get_peft_model(base, cfg).save_pretrained(tmp_path / "adapter")
    registry.add_tuned("ft:tiny-llama:test:ftjob-x", "tiny-llama", tmp_path / "adapter")

    plain = service.chat(tiny_model, req("Hello there", max_tokens=10)).text
    tuned = service.chat("ft:tiny-llama:test:ftjob-x", req("Hello there", max_tokens=10)).text
    assert tuned != plain
    assert service.chat(tiny_model, req("Hello there", max_tokens=10)).text == plain
    assert hashlib.sha256(weights.read_bytes()).hexdigest() == before
    from peft import PeftModel

    assert isinstance(service.open_backend("ft:tiny-llama:test:ftjob-x").model, PeftModel)  # unmerged


def test_model_is_loaded_once_per_process(tiny_model):
    a = service.open_backend(tiny_model, backend="torch")
    b = service.open_backend(tiny_model)
    assert a is b


def test_shared_prompt_start_is_run_once_and_changes_no_output(tiny_model):
    from ladder.models import torch_backend

    system = "You classify support messages. Categories: billing, outage, account, shipping. " * 3
    asks = ["My invoice is wrong", "The network is down again since this morning", "x", "Where is my parcel?"]
    reqs = [
        ChatRequest.of([{"role": "system", "content": system}, {"role": "user", "content": a}], max_tokens=6)
        for a in asks
    ]
    singles = [service.chat(tiny_model, r) for r in reqs]
    backend = service.open_backend(tiny_model, backend="torch")
    widths = []
    real_forward = backend.model.forward

    def spy(*args, **kwargs):
        widths.append(tuple(kwargs["input_ids"].shape))
        return real_forward(*args, **kwargs)

    backend.model.forward = spy
    try:
        batch = service.chat_batch(tiny_model, reqs)
    finally:
        backend.model.forward = real_forward
    assert [r.text for r in batch] == [r.text for r in singles]
    prompts = [backend.encode(r.messages) for r in reqs]
    shared = torch_backend.shared_prefix_len(prompts)
    assert shared >= 40  # the system prompt and the template's tokens around it
    # First pass: the common start once; second: only the tails, left-padded to the longest tail.
    assert widths[0] == (1, shared)
    assert widths[1] == (len(reqs), max(len(p) for p in prompts) - shared)


def test_shared_prefix_len_leaves_every_prompt_a_token_and_skips_short_overlaps():
    from ladder.models.torch_backend import MIN_SHARED_PREFIX, shared_prefix_len

    base = list(range(100, 100 + MIN_SHARED_PREFIX + 4))
    assert shared_prefix_len([base, base + [1, 2]]) == len(base) - 1  # identical start: keep one token
    assert shared_prefix_len([base + [1], base + [2]]) == len(base)
    assert shared_prefix_len([[1] + base, [2] + base]) == 0
    assert shared_prefix_len([base[: MIN_SHARED_PREFIX - 1] + [7], base[: MIN_SHARED_PREFIX - 1] + [8]]) == 0
