"""Token counts with a model's own tokenizer and chat template; training-time estimates for this machine."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

from ladder.data.formats import Example
from ladder.settings import get_settings
from ladder.store.db import DEFAULT_PROJECT

# LoRA SFT throughput (real tokens/s: forward + backward + AdamW step, r=16 on all linear layers,
# micro-batches of 8 x 64 tokens) of SmolLM2-135M on one CPU core of the 2-core dev machine:
# 88.5 tokens per CPU-second with one thread (`python -m ladder.data.calibrate`, docs/datasets.md).
# One core's worth, because that machine is shared; a job's own measured speed replaces it.
DEFAULT_TRAIN_TOKENS_PER_SECOND = 90.0
DEFAULT_MODEL_PARAMS = 134_515_008
CHARS_PER_TOKEN = 4.0  # fallback when the model has no local tokenizer (remote models)


@dataclass
class TokenCounts:
    """Per example: all tokens after the chat template, and the assistant tokens that carry loss."""

    total: list[int]
    trained: list[int]
    tokenizer: str  # the model whose tokenizer counted, or "estimate (4 chars/token)"


def _plain(messages: list[dict]) -> list[dict]:
    return [{"role": m["role"], "content": m["content"]} for m in messages]


def count_tokens(examples: list[Example], model: str | None = None, project_id: str = DEFAULT_PROJECT) -> TokenCounts:
    """Count with `model`'s tokenizer and chat template (the default model when None)."""
    name = model or get_settings().default_model
    try:
        from ladder.models.hf import load_tokenizer

        tok = load_tokenizer(name, project_id)
    except (ValueError, OSError):
        # Remote models have no local tokenizer; an estimate is still useful for size and cost.
        total = [
            math.ceil(sum(len(m["content"]) for m in e.messages) / CHARS_PER_TOKEN) + 4 * len(e.messages)
            for e in examples
        ]
        trained = [
            math.ceil(sum(len(m["content"]) for m in e.messages if _trains(m)) / CHARS_PER_TOKEN) for e in examples
        ]
        return TokenCounts(total, trained, f"estimate ({CHARS_PER_TOKEN:g} chars/token)")
    if not examples:
        return TokenCounts([], [], name)
    texts = [tok.apply_chat_template(_plain(e.messages), tokenize=False) for e in examples]
    total = [len(ids) for ids in tok(texts, add_special_tokens=False)["input_ids"]]
    answers = [m["content"] for e in examples for m in e.messages if _trains(m)]
    answer_ids = tok(answers, add_special_tokens=False)["input_ids"] if answers else []
    lengths = iter(len(ids) for ids in answer_ids)
    # +1 per answer: the end-of-turn token the model also learns to emit.
    trained = [sum(next(lengths) + 1 for m in e.messages if _trains(m)) for e in examples]
    return TokenCounts(total, trained, name)


def _trains(m: dict) -> bool:
    return m["role"] == "assistant" and m.get("weight", 1) != 0


def auto_epochs(n_examples: int) -> int:
    """The epochs `ladder tune --epochs auto` picks (OpenAI's rule: 3, clamped to a sensible band)."""
    if n_examples <= 0:
        return 0
    try:
        from ladder.tuning.hparams import auto_epochs as tuned
    except ImportError:  # the tuning part is optional for validation
        return 3
    return tuned(n_examples)


def default_max_length() -> int:
    """The sequence length `ladder tune` truncates to by default (longer examples lose their end)."""
    try:
        from ladder.tuning.hparams import DEFAULTS

        return int(DEFAULTS["max_seq_length"])
    except (ImportError, KeyError, ValueError):
        return 1024


def _speed_file():
    # Under the data dir, not the (possibly shared) cache dir: a measurement belongs to one install.
    return get_settings().home / "train_speed.json"


def save_measured_speed(model: str, tokens_per_second: float, device: str) -> None:
    path = _speed_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    data = json.loads(path.read_text()) if path.exists() else {}
    data[f"{model}@{device}"] = tokens_per_second
    path.write_text(json.dumps(data, indent=1))


def model_params(model: str | None, project_id: str = DEFAULT_PROJECT) -> int | None:
    """Parameter count of a local model from its config (no weights loaded); None if unknown."""
    try:
        from ladder.models.hf import hf_dir
        from ladder.models.registry import get_model

        spec = get_model(model or get_settings().default_model, project_id)
        if spec.backend == "remote":
            return None
        cfg = json.loads((hf_dir(spec, project_id) / "config.json").read_text())
        h, n_layers = cfg["hidden_size"], cfg["num_hidden_layers"]
        inter = cfg.get("intermediate_size", 4 * h)
        heads, kv = (
            cfg.get("num_attention_heads", 1),
            cfg.get("num_key_value_heads") or cfg.get("num_attention_heads", 1),
        )
        attn = 2 * h * h + 2 * h * (h * kv // heads)
        embed = cfg["vocab_size"] * h * (1 if cfg.get("tie_word_embeddings", True) else 2)
        return n_layers * (attn + 3 * h * inter + 2 * h) + embed + h
    except Exception:  # noqa: BLE001 - an estimate must never break validation
        return None


def _speed_of_past_jobs(model: str, project_id: str) -> float | None:
    """Median tokens/s the trainer reported in the latest succeeded job on this base model."""
    try:
        from ladder.tuning.jobs import last_training_speeds

        speeds = sorted(last_training_speeds(model, project_id))
        return float(speeds[len(speeds) // 2]) if speeds else None
    except Exception:  # noqa: BLE001 - no tuning tables yet, or another schema: fall back to a constant
        return None


def tokens_per_second(model: str | None, project_id: str = DEFAULT_PROJECT) -> tuple[float, str]:
    """Training throughput for `model` here: measured on this machine if calibrated, else the
    documented constant scaled by parameter count. Returns (tokens/s, where it came from)."""
    name = model or get_settings().default_model
    device = "cpu"
    try:
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
    except ImportError:
        pass
    path = _speed_file()
    if path.exists():
        measured = json.loads(path.read_text()).get(f"{name}@{device}")
        if measured:
            return float(measured), f"`ladder data calibrate` on this machine ({device})"
    seen = _speed_of_past_jobs(name, project_id)
    if seen:
        return seen, "median speed of earlier fine-tuning jobs here"
    params = model_params(name, project_id)
    scale = DEFAULT_MODEL_PARAMS / params if params else 1.0
    # Small models do not get faster without bound: per-step overheads dominate below ~10M params.
    scale = min(scale, 20.0)
    return DEFAULT_TRAIN_TOKENS_PER_SECOND * scale, "documented CPU constant scaled by model size"
