"""Chat examples to token ids with the base's chat template, loss only on assistant tokens; batching."""

from __future__ import annotations

import random
from dataclasses import dataclass

IGNORE = -100


@dataclass
class Encoded:
    input_ids: list[int]
    labels: list[int]  # IGNORE where no loss is taken

    @property
    def trained_tokens(self) -> int:
        return sum(1 for t in self.labels if t != IGNORE)


def _render(tok, messages: list[dict], add_generation_prompt: bool) -> str:
    plain = [{"role": m["role"], "content": m["content"]} for m in messages]
    return tok.apply_chat_template(plain, tokenize=False, add_generation_prompt=add_generation_prompt)


def encode_messages(tok, messages: list[dict], max_len: int) -> Encoded:
    """Token ids of the whole conversation; labels set on each trained assistant turn.

    The text is cut where each assistant turn starts and ends (rendering prefixes with the
    template), each piece tokenised on its own, so the labels line up exactly with the
    template's output. Turns with weight 0 are context only.
    """
    pieces: list[tuple[str, bool]] = []
    done = ""
    for i, m in enumerate(messages):
        if m["role"] != "assistant":
            continue
        before = _render(tok, messages[:i], add_generation_prompt=True)
        after = _render(tok, messages[: i + 1], add_generation_prompt=False)
        if not before.startswith(done) or not after.startswith(before):
            raise ValueError("the chat template does not render conversations as prefixes of each other")
        pieces.append((before[len(done) :], False))
        pieces.append((after[len(before) :], m.get("weight", 1) != 0))
        done = after
    full = _render(tok, messages, add_generation_prompt=False)
    if full.startswith(done) and len(full) > len(done):
        pieces.append((full[len(done) :], False))
    ids: list[int] = []
    labels: list[int] = []
    for text, trained in pieces:
        if not text:
            continue
        t = tok(text, add_special_tokens=False)["input_ids"]
        ids += t
        labels += t if trained else [IGNORE] * len(t)
    return Encoded(ids[:max_len], labels[:max_len])


def encode_all(tok, examples: list[list[dict]], max_len: int) -> list[Encoded]:
    return [encode_messages(tok, msgs, max_len) for msgs in examples]


def epoch_batches(lengths: list[int], batch_size: int, seed: int, epoch: int) -> list[list[int]]:
    """Length-grouped batches of example indices for one epoch, the same for the same seed and epoch.

    Examples are shuffled, then sorted by length inside windows of 50 batches, so each batch
    holds examples of similar length (little padding) while the order stays random; the
    batches themselves are shuffled, except that the longest comes first so an out-of-memory
    error shows at step 1 rather than hours in.
    """
    rng = random.Random(f"{seed}:{epoch}")
    order = list(range(len(lengths)))
    rng.shuffle(order)
    window = batch_size * 50
    grouped: list[int] = []
    for start in range(0, len(order), window):
        grouped += sorted(order[start : start + window], key=lambda i: -lengths[i])
    batches = [grouped[i : i + batch_size] for i in range(0, len(grouped), batch_size)]
    rng.shuffle(batches)
    longest = max(range(len(batches)), key=lambda b: max(lengths[i] for i in batches[b]))
    batches.insert(0, batches.pop(longest))
    return batches


def collate(items: list[Encoded], pad_id: int):
    """Right-padded tensors (input_ids, attention_mask, labels) for one micro-batch."""
    import torch

    width = max(len(e.input_ids) for e in items)
    ids = torch.full((len(items), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(items), width), dtype=torch.long)
    labels = torch.full((len(items), width), IGNORE, dtype=torch.long)
    for row, e in enumerate(items):
        n = len(e.input_ids)
        ids[row, :n] = torch.tensor(e.input_ids)
        mask[row, :n] = 1
        labels[row, :n] = torch.tensor(e.labels)
    return ids, mask, labels
