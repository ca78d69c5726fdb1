"""Label probabilities: each label's length-normalised log-probability after the prompt, softmaxed over the set.

A label's score is the mean log-probability of its own tokens, read where the assistant's answer
starts (the prompt with the generation prompt), so labels of different token lengths compare
fairly; the softmax over the label set turns the scores into probabilities that sum to 1.
Local backends score with one pass: the prompt once, then every label's continuation from its
keys/values. A backend without `score_labels` (a remote endpoint, whose chat API returns no
log-probabilities of a given continuation) yields no probabilities.
"""

from __future__ import annotations

import math

from ladder.errors import InvalidInput
from ladder.models.types import Message
from ladder.store.db import DEFAULT_PROJECT


def softmax(logps: list[float]) -> list[float]:
    top = max(logps)
    exps = [math.exp(x - top) for x in logps]
    total = sum(exps)
    return [e / total for e in exps]


def label_probs(
    model: str,
    messages: list[Message],
    labels: list[str],
    *,
    backend: str | None = None,
    project_id: str = DEFAULT_PROJECT,
) -> dict[str, float] | None:
    """{label: probability} for the answer to `messages`, or None where the backend cannot score."""
    from ladder.models import service

    b = service.open_backend(model, backend=backend, project_id=project_id)
    scorer = getattr(b, "score_labels", None)
    if scorer is None or not labels:
        return None
    labels = list(dict.fromkeys(labels))
    return dict(zip(labels, softmax(scorer(messages, labels)), strict=True))


def _label_tokens(labels: list[str], tokenize) -> list[list[int]]:
    out = []
    for label in labels:
        ids = list(tokenize(label))
        if not ids:
            raise InvalidInput(f"label {label!r} has no tokens to score", param="labels")
        out.append(ids)
    return out


def torch_scores(backend, messages: list[Message], labels: list[str]) -> list[float]:
    """Mean token log-probability of each label after the prompt (torch: prompt once, labels as a batch)."""
    import torch
    from transformers import DynamicCache

    prompt = backend.encode(messages)
    conts = _label_tokens(labels, lambda s: backend.tok.encode(s, add_special_tokens=False))
    device = backend.device
    with torch.inference_mode():
        cache = DynamicCache()
        out = backend.model(
            input_ids=torch.tensor([prompt], device=device), cache=cache, use_cache=True, logits_to_keep=1
        )
        first = out.logits[0, -1].float().log_softmax(-1)
        totals = [float(first[c[0]]) for c in conts]
        width = max(len(c) for c in conts) - 1
        if width > 0:
            # Every label continues the same prompt: its keys/values are copied to one row per label.
            # Right padding is harmless: a causal model's logits at a real token never see later pads.
            cache.batch_repeat_interleave(len(conts))
            ids = torch.full((len(conts), width), backend.pad_id, dtype=torch.long)
            for i, c in enumerate(conts):
                if len(c) > 1:
                    ids[i, : len(c) - 1] = torch.tensor(c[:-1])
            logp = backend.model(input_ids=ids.to(device), cache=cache, use_cache=True).logits
            logp = logp.float().log_softmax(-1)
            for i, c in enumerate(conts):
                totals[i] += sum(float(logp[i, j - 1, c[j]]) for j in range(1, len(c)))
    return [t / len(c) for t, c in zip(totals, conts, strict=True)]


def _trie(conts: list[list[int]]) -> tuple[dict[tuple[int, ...], set[int]], list[tuple[int, ...]]]:
    """What each prefix of a label must be scored against, and the prefixes past the prompt, parents first.

    `wanted[prefix]` holds the next tokens some label needs after `prefix`; `fed` lists every prefix
    of at least one token that some label continues, so its logits are needed.
    """
    wanted: dict[tuple[int, ...], set[int]] = {}
    for c in conts:
        for j, t in enumerate(c):
            wanted.setdefault(tuple(c[:j]), set()).add(t)
    fed = sorted((p for p in wanted if p), key=lambda p: (len(p), p))
    return wanted, fed


def llamacpp_scores(backend, messages: list[Message], labels: list[str]) -> list[float]:
    """The same scores on llama.cpp: the prompt evaluated once, then every label's tokens.

    `Llama.eval` keeps the logits of a batch's last token only (the context was made without
    `logits_all`, which would cost memory on every generation), so the label tokens are decoded by
    hand with logits at every position. Where the context has a sequence slot per label, the whole
    label trie is one batch: each label is its own sequence holding a copy of the prompt's cache
    (metadata only in llama.cpp's unified cache), and a token that several labels share is decoded
    once for all of them. llama.cpp's batched step runs 2-4x more tokens per second than single
    steps here, and 11 labels of the help-desk sample cost one step instead of eleven. Otherwise
    labels are decoded one after another (see `_by_label`). The prompt's KV cache is kept for the
    next generation.
    """
    import llama_cpp
    import numpy as np

    llm = backend.llm
    prompt, _ = backend._prompt(messages)
    conts = _label_tokens(labels, lambda s: llm.tokenize(s.encode("utf-8"), add_bos=False, special=False))
    n_vocab = llm.n_vocab()
    wanted, fed = _trie(conts)

    def read(i: int, prefix: tuple[int, ...]) -> dict[int, float]:
        row = np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(llm.ctx, i), shape=(n_vocab,))
        row = row.astype(np.float64)
        top = row.max()
        log_z = top + np.log(np.exp(row - top).sum())
        return {t: float(row[t] - log_z) for t in wanted[prefix]}

    with backend._lock:
        backend._fit_threads()
        # Reuse what the context already holds of this prompt (a generation just ran on it), but
        # evaluate at least its last token: that step's logits are the first label token's.
        held = llm.input_ids[: llm.n_tokens].tolist()
        keep = 0
        while keep < min(len(held), len(prompt) - 1) and held[keep] == prompt[keep]:
            keep += 1
        llm.n_tokens = keep
        llm.eval(prompt[keep:])
        logps = {(): read(-1, ())}
        if fed and len(conts) < backend.seq_slots and len(fed) <= llm.n_batch:
            logps |= _as_one_batch(llm, conts, fed, len(prompt), read)
        elif fed:
            logps |= _by_label(llm, conts, len(prompt), read)
        # The context's logits are now a label's: leave the prompt's last token unevaluated so the
        # next generation re-runs it (and reuses the rest) instead of sampling from stale logits.
        llm.n_tokens = len(prompt) - 1
    return [sum(logps[tuple(c[:j])][c[j]] for j in range(len(c))) / len(c) for c in conts]


def _as_one_batch(llm, conts: list[list[int]], fed: list[tuple[int, ...]], n_prompt: int, read) -> dict:
    """Every label continuation in one decode: label i is sequence i + 1, on a copy of the prompt's cache."""
    batch = llm._batch.batch
    for i in range(len(conts)):
        llm._ctx.kv_cache_seq_cp(0, i + 1, 0, n_prompt)
    try:
        for k, prefix in enumerate(fed):
            seqs = [i + 1 for i, c in enumerate(conts) if tuple(c[: len(prefix)]) == prefix]
            batch.token[k] = prefix[-1]
            batch.pos[k] = n_prompt + len(prefix) - 1
            batch.n_seq_id[k] = len(seqs)
            for s, seq in enumerate(seqs):
                batch.seq_id[k][s] = seq
            batch.logits[k] = True
        batch.n_tokens = len(fed)
        llm._ctx.decode(llm._batch)
        return {prefix: read(k, prefix) for k, prefix in enumerate(fed)}
    finally:
        for i in range(len(conts)):
            llm._ctx.kv_cache_seq_rm(i + 1, -1, -1)


def _by_label(llm, conts: list[list[int]], n_prompt: int, read) -> dict:
    """One decode per label on sequence 0, a prefix that labels share ("card arrival", "card payment") once.

    Labels are taken in token order: when a label's new tokens start, the context holds exactly
    its already-scored prefix, because every label between two that share a prefix shares it too.
    """
    logps: dict[tuple[int, ...], dict[int, float]] = {(): {}}
    for c in sorted(conts):
        # The first prefix of this label not scored yet; every longer one is new as well.
        start = next((j for j in range(1, len(c)) if tuple(c[:j]) not in logps), None)
        if start is None:
            continue
        tokens, n_past = c[start - 1 : -1], n_prompt + start - 1
        # What `Llama.eval` does, with logits kept at every token of the batch.
        llm._ctx.kv_cache_seq_rm(-1, n_past, -1)
        llm._batch.set_batch(batch=tokens, n_past=n_past, logits_all=True)
        llm._ctx.decode(llm._batch)
        llm.input_ids[n_past : n_past + len(tokens)] = tokens
        llm.n_tokens = n_past + len(tokens)
        for i, j in enumerate(range(start, len(c))):
            logps[tuple(c[:j])] = read(i, tuple(c[:j]))
    del logps[()]
    return logps
