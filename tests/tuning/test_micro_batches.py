"""Micro-batches: bounded by examples and padded tokens, in order, the loss unchanged by how a batch is cut."""

from __future__ import annotations

import pytest
import torch

from ladder.tuning import hparams, trainer
from ladder.tuning.encode import IGNORE, Encoded, micro_batches


def ex(n: int) -> Encoded:
    return Encoded(list(range(1, n + 1)), [IGNORE] * (n - 2) + [5, 6])


def test_micro_batches_respect_both_bounds_and_keep_the_order():
    items = [ex(n) for n in (40, 30, 30, 20, 10, 10, 10, 5)]
    cut = micro_batches(items, max_items=3, max_tokens=70)
    assert [len(m) for m in cut] == [1, 2, 3, 2]
    assert [e for m in cut for e in m] == items
    assert all(len(m) * max(len(e.input_ids) for e in m) <= 70 for m in cut)
    assert [len(m) for m in micro_batches(items, 8, 10)] == [1] * 8  # a longer example still gets its own
    assert micro_batches([], 4, 100) == []


def test_auto_fills_a_batch_of_short_examples_into_one_micro_batch():
    hp = hparams.resolve({"batch_size": 16}, 900)
    assert hp["micro_batch_size"] == 16 and hp["micro_batch_tokens"] == 2048
    assert hparams.resolve({"batch_size": 16, "micro_batch_size": 4}, 900)["grad_accum"] == 4
    with pytest.raises(Exception, match="micro_batch_tokens"):
        hparams.resolve({"micro_batch_tokens": 0}, 900)


def test_the_validation_loss_does_not_depend_on_the_micro_batches(tiny_model_dir):
    hp = {
        "lora_r": 4,
        "lora_alpha": 8,
        "lora_dropout": 0.0,
        "lora_target_modules": ["q_proj", "v_proj"],
        "micro_batch_size": 16,
    }
    model = trainer.load_lora_model(tiny_model_dir, hp, seed=0, device="cpu")
    torch.manual_seed(0)
    data = [Encoded(torch.randint(5, 900, (n,)).tolist(), [IGNORE] * (n - 3) + [7, 8, 9]) for n in range(6, 30, 2)]
    whole = trainer.evaluate(model, data, {**hp, "micro_batch_tokens": 10**6}, 0, "cpu")
    pieces = trainer.evaluate(model, data, {**hp, "micro_batch_tokens": 40}, 0, "cpu")
    assert pieces == pytest.approx(whole, rel=1e-5)
