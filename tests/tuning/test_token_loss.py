"""token_loss: shared-prefix batching and trimming give the same loss and LoRA gradients as a plain forward."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoTokenizer, DynamicCache

from ladder.tuning import trainer
from ladder.tuning.encode import IGNORE, Encoded, common_prefix, encode_messages, next_token_rows

HP = {
    "lora_r": 4,
    "lora_alpha": 8,
    "lora_dropout": 0.0,
    "lora_target_modules": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
}
SYSTEM = "Classify the customer's banking question. Answer with the category name only."


@pytest.fixture(scope="module")
def tok(tiny_model_dir):
    return AutoTokenizer.from_pretrained(tiny_model_dir)


@pytest.fixture
def model(tiny_model_dir):
    m = trainer.load_lora_model(tiny_model_dir, HP, seed=0, device="cpu")
    torch.manual_seed(1)
    for p in m.parameters():  # LoRA B starts at zero, which would make every A gradient zero
        if p.requires_grad:
            p.data.normal_(0, 0.05)
    m.train()
    return m


@pytest.fixture
def shares(monkeypatch) -> list[int]:
    """Batch sizes the prefix cache was repeated to, one entry per shared-prefix pass."""
    calls: list[int] = []
    real = DynamicCache.batch_repeat_interleave

    def spy(self, repeats):
        calls.append(repeats)
        return real(self, repeats)

    monkeypatch.setattr(DynamicCache, "batch_repeat_interleave", spy)
    return calls


def chat(tok, question: str, answer: str, system: str | None = SYSTEM) -> Encoded:
    msgs = [{"role": "system", "content": system}] if system else []
    msgs += [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]
    return encode_messages(tok, msgs, 512)


def loss_and_grads(model, items, **kw):
    model.zero_grad(set_to_none=True)
    loss, correct, scored, real = trainer.token_loss(model, items, 0, "cpu", **kw)
    loss.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}
    return float(loss.detach()), correct, scored, real, grads


def reference(model, items):
    """Summed loss of each example on its own through the peft model's ordinary forward (full logits)."""
    model.zero_grad(set_to_none=True)
    total = 0.0
    for e in items:
        out = model(input_ids=torch.tensor([e.input_ids]), labels=torch.tensor([e.labels]))
        n = sum(1 for t in e.labels[1:] if t != IGNORE)
        (out.loss * n).backward()
        total += float(out.loss.detach()) * n
    return total, {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}


def assert_same(a, b):
    loss_a, grads_a = a
    loss_b, grads_b = b
    assert loss_a == pytest.approx(loss_b, rel=1e-5)
    assert grads_a.keys() == grads_b.keys()
    for name in grads_a:
        scale = grads_b[name].abs().max().item()
        assert scale > 0, name
        assert torch.allclose(grads_a[name], grads_b[name], rtol=1e-4, atol=1e-5 * scale), name


def test_shared_prefix_gives_the_same_loss_and_gradients(model, tok, shares):
    items = [
        chat(tok, "My card still has not arrived after two weeks, what should I do?", "card_arrival"),
        chat(tok, "Why is the exchange rate so bad?", "exchange_rate"),
        chat(tok, "refund?", "refund_not_showing_up"),
        chat(tok, "I think someone stole my card yesterday evening at the station, please block it", "lost_card"),
    ]
    assert len({len(e.input_ids) for e in items}) == 4
    assert common_prefix(next_token_rows(items)) >= trainer.MIN_SHARED_PREFIX
    loss, correct, scored, real, grads = loss_and_grads(model, items)
    assert shares == [4]
    plain = loss_and_grads(model, items, share_prefix=False)
    assert shares == [4]  # the plain path did not share
    assert (correct, scored, real) == plain[1:4]
    assert scored == sum(e.trained_tokens for e in items)
    assert real == sum(len(e.input_ids) for e in items)
    assert_same((loss, grads), (plain[0], plain[4]))
    assert_same((loss, grads), reference(model, items))


def test_evaluation_shares_too(model, tok, shares):
    items = [chat(tok, f"question number {i} " + "about fees " * i, "fees") for i in range(3)]
    model.eval()
    with torch.no_grad():
        shared = trainer.token_loss(model, items, 0, "cpu")
        plain = trainer.token_loss(model, items, 0, "cpu", share_prefix=False)
    assert shares == [3]
    assert float(shared[0]) == pytest.approx(float(plain[0]), rel=1e-5)
    assert shared[1:] == plain[1:]


def test_no_common_prefix_and_single_rows_take_the_plain_path(model, tok, shares):
    different = [chat(tok, "hello there", "greeting", system=None), chat(tok, "bye", "farewell", system="Be brief.")]
    assert common_prefix(next_token_rows(different)) < trainer.MIN_SHARED_PREFIX
    single = [chat(tok, "Why is the exchange rate so bad?", "exchange_rate")]
    assert common_prefix(next_token_rows(single)) == 0
    for items in (different, single):
        loss, _, _, _, grads = loss_and_grads(model, items)
        assert_same((loss, grads), reference(model, items))
    assert shares == []


def test_a_prefix_reaching_trained_tokens_is_capped(model, tok, shares):
    # Identical conversations, and one that differs only in its answer: the common input runs
    # into the trained tokens, so the shared part must stop before the first scored position.
    a = chat(tok, "Why is the exchange rate so bad?", "exchange_rate")
    b = chat(tok, "Why is the exchange rate so bad?", "exchange_fee")
    items = [a, a, b]
    rows = next_token_rows(items)
    first_scored = next(j for j, t in enumerate(a.labels) if t != IGNORE) - 1
    assert common_prefix(rows) == first_scored
    loss, _, _, _, grads = loss_and_grads(model, items)
    assert shares == [3]
    assert_same((loss, grads), reference(model, items))


def test_rows_are_cut_after_their_last_trained_token():
    e = Encoded([1, 2, 3, 4, 5, 6, 7], [IGNORE, IGNORE, 3, 4, IGNORE, IGNORE, IGNORE])
    assert next_token_rows([e]) == [([1, 2, 3], [IGNORE, 3, 4])]
    nothing = Encoded([1, 2, 3], [IGNORE] * 3)
    first_only = Encoded([1, 2, 3], [1, IGNORE, IGNORE])  # label 0 has no position to predict it
    assert next_token_rows([nothing, first_only, e]) == [([1, 2, 3], [IGNORE, 3, 4])]
    assert common_prefix([([1, 2, 3, 9], [IGNORE] * 3 + [5]), ([1, 2, 4], [IGNORE] * 2 + [5])]) == 2
    assert common_prefix([([1, 2, 3, 9], [IGNORE, 5, 6, 7]), ([1, 2, 3], [IGNORE] * 2 + [5])]) == 1


def test_a_batch_with_nothing_to_score(model):
    loss, correct, scored, real = trainer.token_loss(model, [Encoded([1, 2, 3], [IGNORE] * 3)], 0, "cpu")
    assert (float(loss), correct, scored, real) == (0.0, 0, 0, 3)
