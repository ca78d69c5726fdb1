"""Label answers settled from the validation-loss pass agree with the scoring pass, row by row."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoTokenizer

from ladder.models.label_scores import torch_passes
from ladder.models.torch_backend import TorchBackend
from ladder.models.types import Message
from ladder.tuning import trainer
from ladder.tuning.encode import encode_all
from ladder.tuning.task_metric import TaskMeter

HP = {
    "lora_r": 4,
    "lora_alpha": 8,
    "lora_dropout": 0.0,
    "lora_target_modules": ["q_proj", "v_proj", "down_proj"],
    "micro_batch_size": 4,
    "micro_batch_tokens": 2048,
}
# "card" is a whole label that "card arrival" goes on from: greedy decoding chooses there
# between EOS and going on, and so must the walk.
LABELS = ["card", "card arrival", "refund", "top up", "top up failed"]
SYSTEM = "Sort the message into one category."


@pytest.fixture(scope="module")
def setup(tiny_model_dir):
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = trainer.load_lora_model(tiny_model_dir, HP, seed=0, device="cpu")
    torch.manual_seed(3)
    for p in model.parameters():  # LoRA B starts at zero; random weights make the answers vary
        if p.requires_grad:
            p.data.normal_(0, 0.3)
    model.train()
    return tok, model


def conversations(tok, model, n: int) -> tuple[list[list[dict]], list[bool]]:
    """Questions whose reference is the model's own greedy answer on even rows and another label on odd ones."""
    system = {"role": "system", "content": SYSTEM}
    asks = [[system, {"role": "user", "content": f"message number {i}"}] for i in range(n)]
    backend = TorchBackend("probe", model, tok, torch.device("cpu"))
    passes = torch_passes(backend, [backend.encode([Message(**m) for m in a]) for a in asks], LABELS)
    model.train()
    refs = [LABELS[p.choice if i % 2 == 0 else (p.choice + 1) % len(LABELS)] for i, p in enumerate(passes)]
    convs = [a + [{"role": "assistant", "content": r}] for a, r in zip(asks, refs, strict=True)]
    return convs, [i % 2 == 0 for i in range(n)]


def test_the_walk_settles_each_answer_as_the_scoring_pass_does(setup):
    tok, model = setup
    convs, right = conversations(tok, model, 16)
    assert {c[-1]["content"] for c in convs} & {"card", "card arrival"}, "no row crosses the EOS choice"
    meter = TaskMeter({"task": "classification", "labels": LABELS}, convs, tok)
    data = encode_all(tok, convs, 512)
    reader = meter.reader(model, "cpu", data)
    trainer.evaluate(model, data, HP, 0, "cpu", read=reader)
    assert reader.settled == dict(enumerate(right))
    assert model.training
    assert meter(model, "cpu", reader) == meter(model, "cpu") == {"valid_accuracy": 0.5, "valid_format": 1.0}


def test_an_answer_the_walk_cannot_settle_goes_through_the_scoring_pass(setup):
    tok, model = setup
    convs, right = conversations(tok, model, 6)
    convs[0][-1]["content"] = convs[0][-1]["content"].upper()  # the same label once normalised, other tokens
    convs[1][-1]["content"] = "something else"  # no label at all
    meter = TaskMeter({"task": "classification", "labels": LABELS}, convs, tok)
    data = encode_all(tok, convs, 512)
    reader = meter.reader(model, "cpu", data)
    trainer.evaluate(model, data, HP, 0, "cpu", read=reader)
    assert sorted(reader.settled) == [2, 3, 4, 5]
    got = meter(model, "cpu", reader)
    assert got == meter(model, "cpu")
    assert got["valid_accuracy"] == pytest.approx((1 + sum(right[2:])) / 6)  # row 0 right, row 1 wrong


def test_a_truncated_example_is_not_settled(setup):
    tok, model = setup
    convs, _ = conversations(tok, model, 2)
    meter = TaskMeter({"task": "classification", "labels": LABELS}, convs, tok)
    data = encode_all(tok, convs, 512)
    data[0].labels[-4:] = [-100] * 4  # as if cut at max_seq_length before the label ends
    reader = meter.reader(model, "cpu", data)
    assert 0 not in reader.walks and 1 in reader.walks
