"""Measure LoRA training throughput (tokens/s) on this machine, for training-time estimates.

Run `python -m ladder.data.calibrate [MODEL]` or `ladder data calibrate`.
"""

from __future__ import annotations

import sys
import time

from ladder.data.tokens import save_measured_speed
from ladder.settings import get_settings
from ladder.store.db import DEFAULT_PROJECT

# The shape of a typical short classification example (banking77 averages 52 tokens after
# SmolLM2's chat template), in micro-batches of 8 as `ladder tune` uses by default.
SEQ_LEN, MICRO_BATCH = 64, 8
TARGET_MODULES = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def calibrate(
    model: str | None = None, *, steps: int = 6, save: bool = False, project_id: str = DEFAULT_PROJECT
) -> dict:
    """Time `steps` LoRA SFT steps (forward, backward, AdamW) on fixed-size batches of real token ids."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from ladder.models.hf import hf_dir, quiet_loading
    from ladder.models.registry import get_model

    name = model or get_settings().default_model
    spec = get_model(name, project_id)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    with quiet_loading():
        base = AutoModelForCausalLM.from_pretrained(hf_dir(spec, project_id), dtype=torch.float32).to(device)
        present = {n.rsplit(".", 1)[-1] for n, _ in base.named_modules()}
        lora = LoraConfig(
            r=16,
            lora_alpha=32,
            lora_dropout=0.05,
            task_type="CAUSAL_LM",
            target_modules=[m for m in TARGET_MODULES if m in present] or None,
        )
        net = get_peft_model(base, lora)
    net.train()
    opt = torch.optim.AdamW([p for p in net.parameters() if p.requires_grad], lr=2e-4)
    g = torch.Generator().manual_seed(0)
    vocab = base.config.vocab_size
    batch = torch.randint(0, vocab, (MICRO_BATCH, SEQ_LEN), generator=g).to(device)

    def step() -> None:
        loss = net(input_ids=batch, labels=batch).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    step()  # warm-up: allocations and kernel selection are not part of the steady state
    if device == "cuda":
        torch.cuda.synchronize()
    t0, cpu0 = time.perf_counter(), time.process_time()
    for _ in range(steps):
        step()
    if device == "cuda":
        torch.cuda.synchronize()
    seconds, cpu_seconds = time.perf_counter() - t0, time.process_time() - cpu0
    tokens = steps * MICRO_BATCH * SEQ_LEN
    tps = tokens / seconds
    # On a shared machine wall time depends on the neighbours; CPU time per token does not, and
    # times the thread count gives what the machine does when this job has its cores to itself.
    idle_tps = tokens / cpu_seconds * torch.get_num_threads() if device == "cpu" and cpu_seconds else tps
    if save:
        save_measured_speed(name, tps, device)
    return {
        "model": name,
        "device": device,
        "threads": torch.get_num_threads(),
        "steps": steps,
        "tokens": tokens,
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "tokens_per_second": tps,
        "idle_tokens_per_second": idle_tps,
    }


if __name__ == "__main__":
    print(calibrate(sys.argv[1] if len(sys.argv) > 1 else None, steps=int(sys.argv[2]) if len(sys.argv) > 2 else 6))
