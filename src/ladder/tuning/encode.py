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


def next_token_rows(items: list[Encoded]) -> list[tuple[list[int], list[int]]]:
    """Per example, (inputs, next-token targets) cut after its last scored position.

    targets[j] is the label of token j + 1, the token that position j predicts. Tokens after
    the last trained one cannot change the loss (attention is causal), so they are not run;
    an example with nothing to score (its only label at index 0, or none) is left out.
    """
    rows = []
    for e in items:
        scored = [j for j, t in enumerate(e.labels[1:]) if t != IGNORE]
        if scored:
            end = scored[-1] + 1
            rows.append((e.input_ids[:end], e.labels[1 : end + 1]))
    return rows


def common_prefix(rows: list[tuple[list[int], list[int]]]) -> int:
    """How many leading input tokens all rows share, stopping at the first scored position (0 for one row).

    Those positions can be computed once for the whole micro-batch: none of them needs logits,
    and each row keeps at least one position (its last, which is scored) after them.
    """
    if len(rows) < 2:
        return 0
    n = 0
    for column in zip(*(x for x, _ in rows), strict=False):  # up to the shortest row
        if any(t != column[0] for t in column):
            break
        n += 1
    first_scored = min(next(j for j, t in enumerate(targets) if t != IGNORE) for _, targets in rows)
    return min(n, first_scored)


def collate(rows: list[tuple[list[int], list[int]]], pad_id: int, skip: int = 0):
    """Right-padded tensors (input_ids, attention_mask, targets) of the rows from position `skip` on.

    The attention mask also covers the `skip` leading positions (computed separately, see
    trainer.token_loss), so it is `skip` columns wider than the other two.
    """
    import torch

    width = max(len(x) for x, _ in rows) - skip
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), skip + width), dtype=torch.long)
    targets = torch.full((len(rows), width), IGNORE, dtype=torch.long)
    for row, (x, t) in enumerate(rows):
        ids[row, : len(x) - skip] = torch.tensor(x[skip:])
        targets[row, : len(x) - skip] = torch.tensor(t[skip:])
        mask[row, : len(x)] = 1
    return ids, mask, targets


def micro_batches(items: list[Encoded], max_items: int, max_tokens: int) -> list[list[Encoded]]:
    """`items` cut into consecutive micro-batches of at most `max_items` examples and `max_tokens`
    padded tokens (rows x the longest row), each holding at least one example.

    Batches are length-grouped (`epoch_batches`), so the longest row of a run is close to the rest.
    """
    out: list[list[Encoded]] = []
    cur: list[Encoded] = []
    longest = 0
    for e in items:
        n = len(e.input_ids)
        if cur and (len(cur) >= max_items or (len(cur) + 1) * max(longest, n) > max_tokens):
            out.append(cur)
            cur, longest = [], 0
        cur.append(e)
        longest = max(longest, n)
    if cur:
        out.append(cur)
    return out
