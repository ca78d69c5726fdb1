"""Hyperparameters of a LoRA job: the "auto" heuristics and validation of what a user asks for."""

from __future__ import annotations

import math

from ladder.errors import InvalidInput

# OpenAI's published rule for the default number of epochs: 3, moved so that
# examples x epochs lands between these bounds (tiny sets get more passes, huge ones fewer).
MIN_TARGET_EXAMPLES = 100
MAX_TARGET_EXAMPLES = 25_000
MIN_DEFAULT_EPOCHS = 1
MAX_DEFAULT_EPOCHS = 25
# LoRA on small models tolerates a far larger step than full fine-tuning; this is the learning
# rate that learning_rate_multiplier=1 means.
BASE_LEARNING_RATE = 2e-4
# With a validation slice and early stopping, the automatic epoch count is OpenAI's rule (3 for most
# sets) but never fewer than this: the cosine schedule then decays within passes the metric is
# measured on, and the job stops sooner when the metric stops rising. Measured on 10 BANKING77
# intents (bench/tune_quality.py): under a 5-epoch schedule the best eval came at epoch 2 and
# patience ran 1.5 epochs past it (test accuracy 0.950); under 3 the metric rose to the end and
# the model matched a plain 2-epoch script (0.970 vs 0.965).
MIN_EPOCHS_WITH_STOPPING = 3
# The automatic validation slice: 10% of the training set, at least 20 items where the set allows
# (a fifth of it at most), at most 100 (each eval step decodes all of them), none below 8.
VALIDATION_FRACTION = 0.1
VALIDATION_MIN, VALIDATION_MAX, VALIDATION_FLOOR = 20, 100, 8
MAX_AUTO_EVALS = 20

DEFAULTS: dict = {
    "n_epochs": "auto",
    "batch_size": "auto",
    "learning_rate_multiplier": "auto",
    "lora_r": 16,
    "lora_alpha": "auto",
    "lora_dropout": 0.05,
    "lora_target_modules": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
    "micro_batch_size": "auto",
    "micro_batch_tokens": 2048,
    "max_seq_length": 1024,
    "scheduler": "cosine",
    "warmup_ratio": 0.05,
    "weight_decay": 0.0,
    "checkpoint_every": "auto",
    "eval_every": "auto",
    "max_grad_norm": 1.0,
    "validation_split": "auto",
    "early_stopping_patience": 2,  # evals, about twice an epoch: one epoch without a better metric
    "task": "auto",
    "labels": None,
    "schema": None,
}
# Set from the data by the service (task_metric.resolve_task), not range-checked here.
TASK_KEYS = ("task", "labels", "schema")


def auto_epochs(n_examples: int) -> int:
    epochs = 3
    if n_examples * epochs < MIN_TARGET_EXAMPLES:
        epochs = min(MAX_DEFAULT_EPOCHS, math.ceil(MIN_TARGET_EXAMPLES / n_examples))
    elif n_examples * epochs > MAX_TARGET_EXAMPLES:
        epochs = max(MIN_DEFAULT_EPOCHS, MAX_TARGET_EXAMPLES // n_examples)
    return epochs


def auto_batch_size(n_examples: int) -> int:
    # About 1/128 of the data per step, as a power of two between 4 and 32: enough steps per
    # epoch for the schedule and the evals to matter, big enough batches for stable gradients.
    # Measured on 10 BANKING77 intents (888 examples, bench/tune_quality.py): steps of 8 reached
    # test accuracy 0.975 in 430 s (early stop after 2 of 3 epochs), steps of 16 (1/64) 0.943 in 535 s.
    return int(min(32, max(4, 2 ** round(math.log2(max(1, n_examples) / 128)))))


def auto_lr_multiplier(batch_size: int) -> float:
    # Square-root scaling with the batch size around a batch of 8, clamped.
    return round(min(2.0, max(0.5, math.sqrt(batch_size / 8))), 3)


def validation_count(asked, n_examples: int) -> int:
    """How many training examples to hold out as the validation slice (0: none).

    `asked` is "auto", a fraction in [0, 0.5] or a count; the rest must keep the hard minimum.
    """
    from ladder.data.validate import HARD_MINIMUM

    if asked in (None, "auto"):
        k = max(round(n_examples * VALIDATION_FRACTION), min(VALIDATION_MIN, n_examples // 5))
        k = min(k, VALIDATION_MAX)
        return k if k >= VALIDATION_FLOOR and n_examples - k >= HARD_MINIMUM else 0
    value = _number({"validation_split": asked}, "validation_split", float, 0.0, float(n_examples))
    if value < 1 and value > 0.5:
        raise InvalidInput(
            f"hyperparameter validation_split={value}: a fraction must be at most 0.5 (or give a count)",
            param="validation_split",
        )
    if value >= 1 and value != int(value):
        raise InvalidInput(
            f"hyperparameter validation_split={value}: give a fraction below 1 or a whole count",
            param="validation_split",
        )
    k = round(n_examples * value) if value < 1 else int(value)
    if k and n_examples - k < HARD_MINIMUM:
        raise InvalidInput(
            f"hyperparameter validation_split={asked} holds out {k} of {n_examples} examples, leaving fewer than "
            f"{HARD_MINIMUM} to train on; lower it or set it to 0",
            param="validation_split",
        )
    return k


def _number(hp: dict, key: str, kind: type, lo: float, hi: float):
    value = hp[key]
    try:
        value = kind(value)
    except (TypeError, ValueError):
        raise InvalidInput(f"hyperparameter {key} must be 'auto' or a number, got {value!r}", param=key) from None
    if not lo <= value <= hi:
        raise InvalidInput(f"hyperparameter {key}={value} is out of range [{lo}, {hi}]", param=key)
    return value


def resolve(asked: dict | None, n_examples: int, has_validation: bool = False) -> dict:
    """The concrete values for a job: the user's where given, the heuristics where 'auto'.

    `n_examples` is what is trained on (after any validation slice); `has_validation` says whether
    there is validation data to stop early on.
    """
    asked = dict(asked or {})
    unknown = set(asked) - set(DEFAULTS)
    if unknown:
        raise InvalidInput(
            f"unknown hyperparameter(s): {', '.join(sorted(unknown))}; known: {', '.join(DEFAULTS)}",
            param="hyperparameters",
        )
    hp = {**DEFAULTS, **{k: v for k, v in asked.items() if v is not None}}
    auto = lambda k: hp[k] == "auto"  # noqa: E731
    hp["early_stopping_patience"] = _number(hp, "early_stopping_patience", int, 0, 10**6)
    if not has_validation:
        hp["early_stopping_patience"] = 0  # nothing to stop on
    if auto("n_epochs"):
        hp["n_epochs"] = auto_epochs(n_examples)
        if hp["early_stopping_patience"]:
            hp["n_epochs"] = max(hp["n_epochs"], MIN_EPOCHS_WITH_STOPPING)
    else:
        hp["n_epochs"] = _number(hp, "n_epochs", int, 1, 100)
    hp["batch_size"] = auto_batch_size(n_examples) if auto("batch_size") else _number(hp, "batch_size", int, 1, 1024)
    hp["learning_rate_multiplier"] = (
        auto_lr_multiplier(hp["batch_size"])
        if auto("learning_rate_multiplier")
        else _number(hp, "learning_rate_multiplier", float, 1e-4, 100)
    )
    hp["learning_rate"] = BASE_LEARNING_RATE * hp["learning_rate_multiplier"]
    hp["lora_r"] = _number(hp, "lora_r", int, 1, 512)
    hp["lora_alpha"] = 2 * hp["lora_r"] if auto("lora_alpha") else _number(hp, "lora_alpha", float, 0.1, 4096)
    hp["lora_dropout"] = _number(hp, "lora_dropout", float, 0.0, 0.9)
    # Micro-batches bound memory by padded tokens (micro_batch_tokens) and, if asked, by examples; the
    # rest of the batch comes from gradient accumulation. Short examples fill one micro-batch: on 2
    # CPU cores a batch of 16 banking questions trains 11% faster as one micro-batch than as two of 8.
    hp["micro_batch_size"] = (
        hp["batch_size"] if auto("micro_batch_size") else _number(hp, "micro_batch_size", int, 1, hp["batch_size"])
    )
    hp["micro_batch_tokens"] = _number(hp, "micro_batch_tokens", int, 16, 10**7)
    hp["grad_accum"] = math.ceil(hp["batch_size"] / hp["micro_batch_size"])  # at least; more for long examples
    hp["max_seq_length"] = _number(hp, "max_seq_length", int, 16, 32768)
    if hp["scheduler"] not in ("cosine", "linear", "constant"):
        raise InvalidInput("hyperparameter scheduler must be cosine, linear or constant", param="scheduler")
    hp["warmup_ratio"] = _number(hp, "warmup_ratio", float, 0.0, 0.5)
    hp["weight_decay"] = _number(hp, "weight_decay", float, 0.0, 1.0)
    hp["max_grad_norm"] = _number(hp, "max_grad_norm", float, 0.0, 1e6)
    steps_per_epoch = math.ceil(n_examples / hp["batch_size"])
    hp["steps_per_epoch"] = steps_per_epoch
    hp["total_steps"] = steps_per_epoch * hp["n_epochs"]
    # About 5 checkpoints per job besides the one at each epoch end.
    hp["checkpoint_every"] = (
        max(1, hp["total_steps"] // 5) if auto("checkpoint_every") else _number(hp, "checkpoint_every", int, 1, 10**9)
    )
    # Each eval decodes the whole validation slice (the task metric): twice an epoch bounds its cost,
    # and no more than MAX_AUTO_EVALS per job for tiny sets run over many epochs.
    hp["eval_every"] = (
        max(1, math.ceil(steps_per_epoch / 2), math.ceil(hp["total_steps"] / MAX_AUTO_EVALS))
        if auto("eval_every")
        else _number(hp, "eval_every", int, 1, 10**9)
    )
    return hp
