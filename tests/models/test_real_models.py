"""The real SmolLM2 through both local backends (slow: loads real weights)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ladder.models import service
from ladder.models.types import ChatRequest, GenerationParams, Message

pytestmark = pytest.mark.slow
NAME = "smollm2-135m-instruct"
PROMPTS = [
    "Write a haiku about the sea.",
    "List three colours of the rainbow.",
    "How do I reset my router?",
    "What is 2 plus 3?",
    "What is the capital of France?",
]


def test_both_backends_answer_and_agree_where_the_model_is_decided(ladder_home):
    """Greedy decoding agrees token for token until a near-tie.

    llama.cpp multiplies the Q4_1 weights with activations quantised to 8 bits, torch with the
    same weights de-quantised to float32, so logits differ by a few tenths. Where torch's top two
    candidates are that close, the two backends may pick different tokens; everywhere else they
    must pick the same one. The test checks exactly that at every step of every prompt.
    """
    llama = service.open_backend(NAME)
    tb = service.open_backend(NAME, backend="torch")
    agreed_steps = 0
    for prompt in PROMPTS:
        msgs = [Message("user", prompt)]
        ids = llama._prompt(msgs)[0]
        assert ids == tb.encode(msgs)  # same chat template, same tokens
        out = service.chat(NAME, ChatRequest(msgs, GenerationParams(max_tokens=12)))
        assert out.text.strip() and out.usage.prompt_tokens == len(ids)
        llama_tokens = llama.llm.tokenize(out.text.encode(), add_bos=False, special=False)[:8]
        ctx = list(ids)
        for tok in llama_tokens:
            with torch.no_grad():
                logits = tb.model(torch.tensor([ctx])).logits[0, -1].float().numpy()
            top2 = np.sort(logits)[-2:]
            if int(logits.argmax()) != tok:
                assert top2[1] - top2[0] < 1.0, f"{prompt!r}: backends disagree on a decided token"
                assert logits[tok] >= top2[1] - 1.0, "llama.cpp's token is far from torch's best"
                break
            agreed_steps += 1
            ctx.append(tok)
    assert agreed_steps >= 20


def test_torch_cache_makes_the_second_load_fast(ladder_home):
    import time

    from ladder.models.hf import hf_dir
    from ladder.models.registry import get_model

    hf_dir(get_model(NAME))  # first use converts the GGUF (about 20 s)
    service.model_cache().drop()
    t0 = time.perf_counter()
    service.open_backend(NAME, backend="torch")
    assert time.perf_counter() - t0 < 5.0
