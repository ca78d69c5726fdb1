"""Export: the GGUF llama.cpp loads agrees with torch on the top token; the merged HF dir equals the adapter."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from tests.tuning.conftest import file_id

from ladder.models import registry
from ladder.tuning import export, leases, service, worker

PROMPTS = ["Where is my card?", "I want a refund for order 1234.", "hello"]


def tuned(model: str, data: Path, hp: dict) -> str:
    job = service.create_job(file_id(data), model=model, suffix="x", hyperparameters=hp, seed=5)
    done = worker.run_job(leases.claim_next("test"))
    assert done.id == job.id and done.status == "succeeded", done.error
    return done.fine_tuned_model


def torch_greedy(model, ids: list[int], steps: int) -> list[int]:
    """Greedy continuation with the unmerged adapter (what the torch backend serves)."""
    out = list(ids)
    with torch.no_grad():
        for _ in range(steps):
            out.append(int(model(torch.tensor([out])).logits[0, -1].argmax()))
    return out


def llama_top_tokens(llm, seq: list[int]) -> np.ndarray:
    llm.reset()
    llm.eval(seq)
    return np.array(llm.scores[: len(seq)]).argmax(-1)


def check_agreement(name: str, gguf: Path, steps: int, prompts: list[str] = PROMPTS) -> None:
    from llama_cpp import Llama
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from ladder.models.hf import hf_dir

    spec = registry.get_model(name)
    base = AutoModelForCausalLM.from_pretrained(hf_dir(spec), dtype=torch.float32)
    model = PeftModel.from_pretrained(base, spec.adapter_path).eval()
    tok = AutoTokenizer.from_pretrained(hf_dir(spec))
    llm = Llama(str(gguf), n_ctx=512, logits_all=True, verbose=False)
    for prompt in prompts:
        text = tok.apply_chat_template(
            [{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True
        )
        ids = tok(text, add_special_tokens=False)["input_ids"]
        # llama.cpp tokenises the chat prompt exactly as the HF tokenizer does
        assert llm.tokenize(text.encode(), add_bos=False, special=True) == ids
        seq = torch_greedy(model, ids, steps)
        top = llama_top_tokens(llm, seq)
        # at each of the generated steps llama.cpp's top token is the token torch chose
        assert list(top[len(ids) - 1 : -1]) == seq[len(ids) :], prompt


def test_gguf_and_torch_agree_and_llamacpp_serves_it(tiny_model, train_file, fast_hp):
    name = tuned(tiny_model, train_file, fast_hp)
    path = export.export_gguf(name, quant="f16")
    assert path.exists() and registry.get_model(name).path == str(path)
    check_agreement(name, path, steps=8)

    from ladder.models import service as models
    from ladder.models.types import ChatRequest

    answer = models.chat(name, ChatRequest.of([{"role": "user", "content": "hi"}], max_tokens=4), backend="llamacpp")
    assert answer.usage.completion_tokens > 0


def test_merged_export_equals_the_adapter(tiny_model, train_file, fast_hp, tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from ladder.models.hf import hf_dir

    name = tuned(tiny_model, train_file, fast_hp)
    out = export.export_merged(name, tmp_path / "merged")
    assert (out / "config.json").exists() and (out / "model.safetensors").exists()
    assert (out / "tokenizer_config.json").exists()
    spec = registry.get_model(name)
    merged = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32).eval()
    adapted = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(hf_dir(spec)), spec.adapter_path)
    ids = torch.tensor([[1, 9690, 198, 2683, 359, 253]])
    with torch.no_grad():
        torch.testing.assert_close(merged(ids).logits, adapted.eval()(ids).logits, atol=1e-4, rtol=1e-4)


def test_bad_quant_is_refused(tiny_model):
    from ladder.errors import InvalidInput

    with pytest.raises(InvalidInput, match="quant"):
        export.export_gguf(tiny_model, quant="q2_k")


@pytest.mark.slow
def test_smollm2_short_lora_run_chats_and_exports(make_chat, tmp_path):
    """A real SmolLM2 LoRA job (a few steps), chat through torch, export F16, llama.cpp agrees."""
    from ladder.models import service as models
    from ladder.models.types import ChatRequest
    from ladder.settings import get_settings

    data = make_chat(tmp_path / "train.jsonl", 10)
    hp = {"n_epochs": 1, "batch_size": 5, "micro_batch_size": 5, "lora_r": 8, "max_seq_length": 128}
    name = tuned(get_settings().default_model, data, hp)
    reply = models.chat(
        name, ChatRequest.of([{"role": "user", "content": "message number 3 about billing"}], max_tokens=4)
    )
    assert reply.text.strip()
    # F16: Q8_0 re-quantisation noise can flip near-ties between the top two tokens after a few steps.
    path = export.export_gguf(name, quant="f16")
    check_agreement(name, path, steps=6, prompts=PROMPTS[:2])
