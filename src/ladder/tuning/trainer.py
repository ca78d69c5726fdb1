"""The LoRA SFT loop: length-grouped batches, gradient accumulation, warm-up + decay, exact resume."""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ladder.tuning import checkpoints
from ladder.tuning.encode import (
    IGNORE,
    Encoded,
    collate,
    common_prefix,
    epoch_batches,
    micro_batches,
    next_token_rows,
)
from ladder.tuning.selection import BestSoFar

MIN_SHARED_PREFIX = 8  # a shorter common prefix is not worth its own forward pass
CHECKPOINT_METRICS = (
    "train_loss",
    "train_mean_token_accuracy",
    "valid_loss",
    "valid_mean_token_accuracy",
    "valid_accuracy",
    "valid_f1",
    "valid_format",
)


class StopRequested(Exception):
    """Cancel asked for, or the worker lost its lease: stop at once without saving."""


@dataclass
class Callbacks:
    metrics: Callable[[dict], None] = lambda d: None
    message: Callable[[str, str], None] = lambda level, msg: None
    checkpoint: Callable[[int, float, Path, dict], None] = lambda step, epoch, path, m: None
    should_stop: Callable[[], bool] = lambda: False


@dataclass
class Result:
    adapter_dir: Path
    trained_tokens: int
    steps: int
    metrics: dict = field(default_factory=dict)
    best_step: int = 0  # the checkpoint the adapter was copied from (0: the final weights)
    stopped_early: bool = False


def pick_device() -> str:
    import torch

    from ladder.settings import get_settings

    want = get_settings().device
    if want == "cpu":
        return "cpu"
    return "cuda" if torch.cuda.is_available() else "cpu"


def load_lora_model(base_dir: Path, hp: dict, seed: int, device: str):
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from ladder.models.hf import quiet_loading

    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    cfg = LoraConfig(
        r=hp["lora_r"],
        lora_alpha=hp["lora_alpha"],
        lora_dropout=hp["lora_dropout"],
        target_modules=hp["lora_target_modules"],
        task_type="CAUSAL_LM",
    )
    with quiet_loading():
        base = AutoModelForCausalLM.from_pretrained(base_dir, dtype=dtype).to(device)
        torch.manual_seed(seed)  # LoRA's A matrices are drawn here
        model = get_peft_model(base, cfg)
    if device == "cuda":
        for p in model.parameters():  # trainable LoRA weights in float32 for a stable optimizer
            if p.requires_grad:
                p.data = p.data.float()
    else:
        from ladder.tuning.dropout import cheapen_lora_dropout

        cheapen_lora_dropout(model)
    return model


def python_rng_list(state: tuple) -> list:
    """`random.getstate()` as nested lists and ints, which `torch.load(weights_only=True)` reads back."""
    version, internal, gauss_next = state
    return [version, list(internal), gauss_next]


def python_rng_state(saved) -> tuple:
    """The tuple `random.setstate` wants, from `python_rng_list`'s form (or an older tuple)."""
    version, internal, gauss_next = saved
    return (int(version), tuple(int(x) for x in internal), gauss_next)


def lr_lambda(hp: dict):
    total = hp["total_steps"]
    warm = max(1, round(total * hp["warmup_ratio"])) if hp["warmup_ratio"] > 0 else 0

    def f(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        progress = (step - warm) / max(1, total - warm)
        if hp["scheduler"] == "cosine":
            return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
        if hp["scheduler"] == "linear":
            return max(0.0, 1 - progress)
        return 1.0

    return f


def micro_limits(hp: dict) -> tuple[int, int]:
    """(examples, padded tokens) per micro-batch; a job created before the token bound has none."""
    return hp["micro_batch_size"], hp.get("micro_batch_tokens", 10**9)


def token_loss(model, items: list[Encoded], pad_id: int, device: str, share_prefix: bool = True, read=None):
    """(summed loss, correct tokens, scored tokens, real tokens) of a micro-batch.

    Only what the loss needs is computed: each example is cut after its last trained token,
    the LM head runs only on scored positions, and the leading tokens every example shares
    (typically the system prompt) run once, their key/value cache repeated across the batch;
    gradients flow back through that cache. See docs/fine-tuning.md.

    `read(k, positions, logits)`, if given, is called for each item k that has scored positions
    with those positions (index j predicts token j + 1) and their logits, one row per position.
    """
    import torch
    import torch.nn.functional as F

    real = sum(len(e.input_ids) for e in items)
    rows = next_token_rows(items)
    if not rows:
        return torch.zeros((), device=device), 0, 0, real
    inner = model.get_base_model()
    p = common_prefix(rows) if share_prefix else 0
    window = getattr(inner.config, "sliding_window", None)
    if p < MIN_SHARED_PREFIX or (window and max(len(x) for x, _ in rows) > window):
        p = 0  # not worth a separate pass, or a sliding-window cache would drop prefix keys
    cache = None
    if p:
        prefix = torch.tensor([rows[0][0][:p]], device=device)
        cache = inner.model(input_ids=prefix, use_cache=True).cache
        cache.batch_repeat_interleave(len(rows))
    ids, mask, target = (t.to(device) for t in collate(rows, pad_id, skip=p))
    pos = torch.arange(p, mask.shape[1], device=device).expand_as(ids)
    hidden = inner.model(
        input_ids=ids, attention_mask=mask, position_ids=pos, cache=cache, use_cache=False
    ).last_hidden_state
    sel = target != IGNORE
    logits = inner.lm_head(hidden[sel]).float()
    gold = target[sel]
    if read is not None:
        kept = [k for k, e in enumerate(items) if next_token_rows([e])]
        start = 0
        for row, k in enumerate(kept):
            cols = sel[row].nonzero().flatten()
            read(k, (cols + p).tolist(), logits[start : start + len(cols)].detach())
            start += len(cols)
    loss = F.cross_entropy(logits, gold, reduction="sum")
    with torch.no_grad():
        correct = int((logits.argmax(-1) == gold).sum())
    return loss, correct, int(sel.sum()), real


def evaluate(model, data: list[Encoded], hp: dict, pad_id: int, device: str, read=None) -> tuple[float, float]:
    """(validation loss, token accuracy); `read(i, positions, logits)` sees each example i's scored logits."""
    import torch

    loss_sum, correct, n = 0.0, 0, 0
    model.eval()
    with torch.no_grad():
        order = sorted(range(len(data)), key=lambda i: len(data[i].input_ids))
        first = 0
        for items in micro_batches([data[i] for i in order], *micro_limits(hp)):
            idx, first = order[first : first + len(items)], first + len(items)
            if not any(e.trained_tokens for e in items):
                continue
            seen = None if read is None else lambda k, pos, logits, idx=idx: read(idx[k], pos, logits)
            loss, c, k, _ = token_loss(model, items, pad_id, device, read=seen)
            loss_sum, correct, n = loss_sum + float(loss), correct + c, n + k
    model.train()
    return loss_sum / max(1, n), correct / max(1, n)


def train(
    job_dir: Path,
    base_dir: Path,
    train_data: list[Encoded],
    valid_data: list[Encoded],
    hp: dict,
    seed: int,
    pad_id: int,
    cb: Callbacks | None = None,
    meter: Callable | None = None,
) -> Result:
    """Train (or resume) a LoRA adapter; checkpoints in job_dir/checkpoints, the result in job_dir/adapter.

    With validation data, each eval step measures the validation loss and, given a `meter`
    (`meter(model, device, reader) -> {meter.key: value, ...}`, e.g. task_metric.TaskMeter, whose
    `reader(model, device, data)` reads what it can off the validation-loss pass), the task
    metric. The result is the best checkpoint by that metric (ties: lower validation loss), and
    training stops once it has not improved for `early_stopping_patience` evals (0: never).
    """
    import torch
    from peft.utils import set_peft_model_state_dict
    from safetensors.torch import load_file

    from ladder.settings import get_settings
    from ladder.store.blobs import atomic_dir, commit_dir

    cb = cb or Callbacks()
    device = pick_device()
    if get_settings().threads > 0:
        torch.set_num_threads(get_settings().threads)
    model = load_lora_model(base_dir, hp, seed, device)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=hp["learning_rate"], weight_decay=hp["weight_decay"])
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda(hp))
    step, trained_tokens = 0, 0
    best = BestSoFar()
    patience = hp.get("early_stopping_patience", 0) if valid_data else 0
    checkpoints.remove_partial(job_dir)
    resume = checkpoints.latest_resumable(job_dir)
    if resume is not None:
        set_peft_model_state_dict(model, load_file(resume / "adapter_model.safetensors", device=device))
        state = checkpoints.load_state(resume / checkpoints.STATE)
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        step, trained_tokens = state["step"], state["trained_tokens"]
        best = BestSoFar.from_state(state.get("best"))
        torch.set_rng_state(state["rng_torch"])
        random.setstate(python_rng_state(state["rng_python"]))
        if device == "cuda" and state.get("rng_cuda") is not None:
            torch.cuda.set_rng_state(state["rng_cuda"])
        cb.message("info", f"Resumed from the checkpoint at step {step}.")
    else:
        torch.manual_seed(seed + 1)
        random.seed(seed)
    lengths = [len(e.input_ids) for e in train_data]
    spe, total = hp["steps_per_epoch"], hp["total_steps"]
    last: dict = {}
    t_start, steps_timed = time.perf_counter(), 0
    stopped_early = best.exhausted(patience)  # a resumed job may have stopped just before the crash
    for epoch in range(step // spe, hp["n_epochs"]):
        if stopped_early:
            break
        batches = epoch_batches(lengths, hp["batch_size"], seed, epoch)
        for b in range(step - epoch * spe, spe):
            t0 = time.perf_counter()
            items = [train_data[i] for i in batches[b]]
            n_tok = max(1, sum(e.trained_tokens for e in items))
            opt.zero_grad(set_to_none=True)
            loss_sum, correct, real = 0.0, 0, 0
            for micro in micro_batches(items, *micro_limits(hp)):
                if cb.should_stop():
                    raise StopRequested()
                micro = [e for e in micro if e.trained_tokens]
                if not micro:
                    continue
                with torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=device == "cuda"):
                    loss, c, k, r = token_loss(model, micro, pad_id, device)
                if k:
                    (loss / n_tok).backward()
                loss_sum, correct, real = loss_sum + float(loss.detach()), correct + c, real + r
            if hp["max_grad_norm"] > 0:
                torch.nn.utils.clip_grad_norm_(params, hp["max_grad_norm"])
            opt.step()
            sched.step()
            step += 1
            trained_tokens += real
            dt = time.perf_counter() - t0
            steps_timed += 1
            per_step = (time.perf_counter() - t_start) / steps_timed
            last = {
                "step": step,
                "total_steps": total,
                "epoch": epoch + (b + 1) / spe,
                "train_loss": loss_sum / n_tok,
                "train_mean_token_accuracy": correct / n_tok,
                "learning_rate": sched.get_last_lr()[0],
                "tokens_per_second": real / max(dt, 1e-9),
                "trained_tokens": trained_tokens,
                "eta_seconds": per_step * (total - step),
            }
            epoch_end = b == spe - 1
            new_best = False
            # Counted within the epoch, so an epoch's end and the next eval never fall on adjacent steps.
            if valid_data and ((b + 1) % hp["eval_every"] == 0 or epoch_end):
                # A meter that can read its answers off the validation-loss pass gets its logits.
                reader = meter.reader(model, device, valid_data) if meter is not None else None
                vl, va = evaluate(model, valid_data, hp, pad_id, device, read=reader)
                last.update(valid_loss=vl, valid_mean_token_accuracy=va)
                if meter is not None:
                    last.update(meter(model, device, reader))
                new_best = best.update(step, last[meter.key] if meter is not None else None, vl)
                last["best_step"] = best.step
                stopped_early = best.exhausted(patience)
            cb.metrics(last)
            # The best so far is always a checkpoint, so the job can return it.
            if step % hp["checkpoint_every"] == 0 or epoch_end or new_best or stopped_early:
                if cb.should_stop():
                    raise StopRequested()
                state = {
                    "optimizer": opt.state_dict(),
                    "scheduler": sched.state_dict(),
                    "step": step,
                    "trained_tokens": trained_tokens,
                    "rng_torch": torch.get_rng_state(),
                    "rng_python": python_rng_list(random.getstate()),
                    "rng_cuda": torch.cuda.get_rng_state() if device == "cuda" else None,
                    "best": best.state(),
                }
                metrics = {k: v for k, v in last.items() if k in CHECKPOINT_METRICS}
                path = checkpoints.save(job_dir, step, last["epoch"], model, state, metrics)
                cb.checkpoint(step, last["epoch"], path, metrics)
            if stopped_early:
                break
    if stopped_early:
        what = meter.key if meter is not None else "the validation loss"
        cb.message(
            "info",
            f"Early stopping at step {step}: {what} has not improved for {patience} evaluations "
            f"(the best was at step {best.step}).",
        )
    out = job_dir / "adapter"
    tmp = atomic_dir(out)
    source = checkpoints.ckpt_dir(job_dir, best.step) if best.step else None
    if source is not None and (source / checkpoints.COMPLETE).exists():
        checkpoints.copy_adapter(source, tmp)
        shown = f"{meter.key}={best.metric:.4f}, " if meter is not None and best.metric is not None else ""
        loss = f"validation loss={best.loss:.4f}"
        cb.message("info", f"The fine-tuned model is the checkpoint at step {best.step} ({shown}{loss}).")
    else:
        model.save_pretrained(tmp)
    commit_dir(tmp, out)
    summary = {**last, "best_step": best.step, "best_valid_loss": best.loss}
    if meter is not None:
        summary[f"best_{meter.key}"] = best.metric
    return Result(out, trained_tokens, step, summary, best.step, stopped_early)
