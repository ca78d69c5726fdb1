"""Label probabilities: each label's length-normalised log-probability after the prompt, softmaxed over the set.

A label's score is the mean log-probability of its own tokens, read where the assistant's answer
starts (the prompt with the generation prompt), so labels of different token lengths compare
fairly; the softmax over the label set turns the scores into probabilities that sum to 1.
Local backends score with one pass: the prompt once, then every label's continuation from its
keys/values; the same pass gives the label greedy constrained decoding would answer
(`greedy_choice`), so a greedy label pipeline needs no decoding at all. A backend without
`score_labels` (a remote endpoint, whose chat API returns no log-probabilities of a given
continuation) yields no probabilities.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

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
    scoring: bool = False,
) -> dict[str, float] | None:
    """{label: probability} for the answer to `messages`, or None where the backend cannot score.

    `scoring`: on the model's scoring copy (service.open_backend); by default on the backend that
    just generated the answer, whose context still holds the prompt.
    """
    from ladder.models import service

    b = service.open_backend(model, backend=backend, project_id=project_id, scoring=scoring)
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


def label_token_ids(labels: list[str], tokenizer) -> list[list[int]]:
    """Each label's canonical tokens under a Hugging Face tokenizer (what the choice constraint allows)."""
    return _label_tokens(labels, lambda s: tokenizer.encode(s, add_special_tokens=False))


@dataclass
class LabelPass:
    """One answer's scoring pass: every label's score and the label greedy constrained decoding picks."""

    scores: list[float]  # mean token log-probability of each label, in the order asked
    choice: int  # the label constrained greedy decoding produces (the canonical-token trie, then EOS)
    prompt_tokens: int
    label_tokens: int  # the chosen label's tokens: what decoding it would have generated


def as_response(p: LabelPass, labels: list[str], latency_ms: float, name: str):
    """The response greedy decoding under the labels' choice constraint gives, from the pass alone.

    A choice constraint always leaves room for its longest label (`GenerationParams`), so the
    answer ends at EOS; its usage counts what decoding counts: the label's tokens, not the EOS.
    """
    from ladder.models.types import ChatResponse, Usage

    usage = Usage(p.prompt_tokens, p.label_tokens)
    return ChatResponse(labels[p.choice], "stop", usage, latency_ms, name, constraint_mode="native")


def _pass(conts: list[list[int]], logps: dict, eos_ids, prompt_tokens: int) -> LabelPass:
    scores = [sum(logps[tuple(c[:j])][c[j]] for j in range(len(c))) / len(c) for c in conts]
    choice = greedy_choice(conts, logps, eos_ids)
    return LabelPass(scores, choice, prompt_tokens, len(conts[choice]))


def greedy_choice(conts: list[list[int]], logps: dict, eos_ids) -> int:
    """The label that greedy decoding under the choice constraint produces, read off the scoring pass.

    The constraint (`grammars.grammar_text`, both local backends) allows a label's canonical tokens
    only, and EOS once a label is complete: at each node of the label trie greedy decoding takes the
    allowed token with the highest logit (the lowest id on a tie, as argmax does), so the walk
    below is that decoding without running it. `logps[prefix]` holds the log-probabilities of the
    tokens allowed after `prefix`, EOS included where `prefix` is itself a label.
    """
    full = {tuple(c): i for i, c in enumerate(conts)}
    node: tuple[int, ...] = ()
    while True:
        kids = sorted({c[len(node)] for c in conts if len(c) > len(node) and tuple(c[: len(node)]) == node})
        if not kids:
            return full[node]
        row = logps[node]
        options = [(row[t], -t, t) for t in kids]
        if node in full:
            options += [(row[e], -e, None) for e in eos_ids if e in row]
        pick = max(options)[2]
        if pick is None:
            return full[node]
        node = (*node, pick)


def torch_scores(backend, messages: list[Message], labels: list[str]) -> list[float]:
    """Mean token log-probability of each label after the prompt (one item of `torch_passes`)."""
    return torch_passes(backend, [backend.encode(messages)], labels)[0].scores


def torch_passes(backend, prompts: list[list[int]], labels: list[str], batch: int = 16) -> list[LabelPass]:
    """Every label scored after every prompt, `batch` prompts per forward pass.

    Each row holds a prompt followed by the label trie flattened (a token that several labels
    share at the same place is one position), and a 4-D attention mask lets each trie token see
    its prompt and its own ancestors only, with positions counted from the prompt's end: one
    forward pass gives the logits after the prompt and after every label prefix, which is what
    the scores and the greedy choice need. The rows' common start (the system prompt) runs once
    and its keys/values are shared. transformers takes such a mask as it is (no library offers
    label scoring over a trie; vLLM's prompt_logprobs scores one continuation per request).
    """
    conts = label_token_ids(labels, backend.tok)
    wanted, fed = _trie(conts, backend.eos_ids)
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
    out: list[LabelPass | None] = [None] * len(prompts)
    for s in range(0, len(order), batch):
        idx = order[s : s + batch]
        for i, logps in zip(idx, _torch_trie_pass(backend, [prompts[i] for i in idx], wanted, fed), strict=True):
            out[i] = _pass(conts, logps, backend.eos_ids, len(prompts[i]))
    return out  # type: ignore[return-value]


def _torch_trie_pass(backend, prompts: list[list[int]], wanted: dict, fed: list[tuple[int, ...]]) -> list[dict]:
    import torch
    from transformers import DynamicCache

    from ladder.models.torch_backend import shared_prefix_len

    device, n, n_fed = backend.device, len(prompts), len(fed)
    shared = shared_prefix_len(prompts) if n > 1 else 0
    tails = [p[shared:] for p in prompts]
    width = max(len(t) for t in tails)
    length = width + n_fed  # per row: [left padding][prompt tail][trie tokens]
    ids = torch.full((n, length), backend.pad_id, dtype=torch.long)
    pos = torch.zeros((n, length), dtype=torch.long)
    mask = torch.zeros((n, 1, length, shared + length), dtype=torch.bool)
    where = {p: k for k, p in enumerate(fed)}
    # trie token k sees trie token j when j is k's ancestor or k itself
    tree = torch.zeros((n_fed, n_fed), dtype=torch.bool)
    for k, p in enumerate(fed):
        for d in range(1, len(p) + 1):
            tree[k, where[p[:d]]] = True
    node_ids = torch.tensor([p[-1] for p in fed], dtype=torch.long)
    for b, t in enumerate(tails):
        lo = width - len(t)
        ids[b, lo:width] = torch.tensor(t)
        ids[b, width:] = node_ids
        n_prompt = shared + len(t)
        pos[b, lo:width] = torch.arange(shared, n_prompt)
        pos[b, width:] = torch.tensor([n_prompt + len(p) - 1 for p in fed])
        keys = mask[b, 0]
        keys[:, :shared] = True
        keys[lo:width, shared + lo : shared + width] = torch.ones(len(t), len(t), dtype=torch.bool).tril()
        keys[width:, shared + lo : shared + width] = True
        keys[width:, shared + width :] = tree
        keys[:lo, :shared] = False
        keys[torch.arange(lo), shared + torch.arange(lo)] = True  # a pad sees itself only (no empty row)
    with torch.inference_mode():
        cache = None
        if shared:
            cache = DynamicCache()
            backend.model(input_ids=torch.tensor([prompts[0][:shared]], device=device), cache=cache, use_cache=True)
            cache.batch_repeat_interleave(n)
        logits = backend.model(
            input_ids=ids.to(device),
            attention_mask=mask.to(device),
            position_ids=pos.to(device),
            cache=cache,
            use_cache=cache is not None,
            logits_to_keep=n_fed + 1,  # the prompt's last token, then every trie token
        ).logits.float()
        logps = logits.log_softmax(-1).cpu()
    prefixes = [(), *fed]
    return [
        {p: {t: float(logps[b, k, t]) for t in wanted[p]} for k, p in enumerate(prefixes) if p in wanted}
        for b in range(n)
    ]


def _trie(conts: list[list[int]], eos_ids=()) -> tuple[dict[tuple[int, ...], set[int]], list[tuple[int, ...]]]:
    """What each prefix of a label must be scored against, and the prefixes past the prompt, parents first.

    `wanted[prefix]` holds the next tokens some label needs after `prefix`, and the EOS tokens
    where `prefix` is a whole label that another label continues (greedy decoding chooses there
    between ending and going on); `fed` lists every prefix of at least one token in `wanted`, so
    its logits are needed.
    """
    wanted: dict[tuple[int, ...], set[int]] = {}
    for c in conts:
        for j, t in enumerate(c):
            wanted.setdefault(tuple(c[:j]), set()).add(t)
    for c in conts:
        if tuple(c) in wanted:
            wanted[tuple(c)].update(eos_ids)
    fed = sorted((p for p in wanted if p), key=lambda p: (len(p), p))
    return wanted, fed


def llamacpp_scores(backend, messages: list[Message], labels: list[str]) -> list[float]:
    """Mean token log-probability of each label after the prompt, on llama.cpp (see `llamacpp_pass`)."""
    return llamacpp_pass(backend, messages, labels).scores


def llamacpp_pass(backend, messages: list[Message], labels: list[str]) -> LabelPass:
    """The same scores and choice on llama.cpp: the prompt evaluated once, then every label's tokens.

    `Llama.eval` keeps the logits of a batch's last token only (the context was made without
    `logits_all`, which would cost memory on every generation), so the label tokens are decoded by
    hand with logits at every position. Where the context has a sequence slot per label, the
    prompt's new tokens and the whole label trie are one batch (`_with_trie`): each label is its
    own sequence that shares the prompt's cache (metadata only in llama.cpp's unified cache), and
    a token that several labels share is decoded once for all of them. llama.cpp's batched step
    runs 2-4x more tokens per second than single steps here: 11 labels of the help-desk sample
    cost no step of their own, where one step per label (`_by_label`, the fallback) cost eleven
    and a separate trie step still cost an eval of a short prompt half its time. The prompt's KV
    cache is kept for the next generation.
    """
    import llama_cpp
    import numpy as np

    llm = backend.llm
    prompt, _ = backend._prompt(messages)
    conts = _label_tokens(labels, lambda s: llm.tokenize(s.encode("utf-8"), add_bos=False, special=False))
    n_vocab = llm.n_vocab()
    wanted, fed = _trie(conts, backend.eos_ids)

    def read(i: int, prefix: tuple[int, ...]) -> dict[int, float]:
        row = np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(llm.ctx, i), shape=(n_vocab,))
        top = float(row.max())
        log_z = top + math.log(float(np.exp(row - top).sum(dtype=np.float64)))
        return {t: float(row[t]) - log_z for t in wanted[prefix]}

    with backend._lock:
        backend._fit_threads()
        # Reuse what the context already holds of this prompt (a generation just ran on it), but
        # evaluate at least its last token: that step's logits are the first label token's.
        held = llm.input_ids[: llm.n_tokens].tolist()
        keep = 0
        while keep < min(len(held), len(prompt) - 1) and held[keep] == prompt[keep]:
            keep += 1
        llm.n_tokens = keep
        room = llm.n_batch - len(fed)  # prompt tokens that fit in the trie's batch
        if fed and len(conts) < backend.seq_slots and room > 0:
            if len(prompt) - keep > room:
                llm.eval(prompt[keep : len(prompt) - room])
            logps = _with_trie(llm, prompt, conts, fed, read)
        else:
            llm.eval(prompt[keep:])
            logps = {(): read(-1, ())}
            if fed:
                logps |= _by_label(llm, conts, len(prompt), read)
        # The context's logits are now a label's: leave the prompt's last token unevaluated so the
        # next generation re-runs it (and reuses the rest) instead of sampling from stale logits.
        llm.n_tokens = len(prompt) - 1
    return _pass(conts, logps, backend.eos_ids, len(prompt))


def _with_trie(llm, prompt: list[int], conts: list[list[int]], fed: list[tuple[int, ...]], read) -> dict:
    """The prompt's tokens past `llm.n_tokens` and every label continuation in one decode.

    Label i is sequence i + 1: it shares the cached part of the prompt (a copy of sequence 0's
    cells), and the new prompt tokens belong to sequence 0 and to every label, so each trie token
    sees the whole prompt and its own ancestors. Sequence 0 is left holding the prompt.
    """
    batch, start, n_prompt = llm._batch.batch, llm.n_tokens, len(prompt)
    seqs_all = range(len(conts) + 1)
    llm._ctx.kv_cache_seq_rm(-1, start, -1)
    for i in range(len(conts)):
        llm._ctx.kv_cache_seq_cp(0, i + 1, 0, start)
    try:
        k = 0
        for pos in range(start, n_prompt):
            batch.token[k], batch.pos[k], batch.n_seq_id[k] = prompt[pos], pos, len(seqs_all)
            for s, seq in enumerate(seqs_all):
                batch.seq_id[k][s] = seq
            batch.logits[k] = pos == n_prompt - 1
            k += 1
        for prefix in fed:
            seqs = [i + 1 for i, c in enumerate(conts) if tuple(c[: len(prefix)]) == prefix]
            batch.token[k], batch.pos[k], batch.n_seq_id[k] = prefix[-1], n_prompt + len(prefix) - 1, len(seqs)
            for s, seq in enumerate(seqs):
                batch.seq_id[k][s] = seq
            batch.logits[k] = True
            k += 1
        batch.n_tokens = k
        llm._ctx.decode(llm._batch)
        llm.input_ids[start:n_prompt] = prompt[start:]
        llm.n_tokens = n_prompt
        last = n_prompt - start - 1  # the prompt's last token: its logits are the first label token's
        return {(): read(last, ())} | {prefix: read(last + 1 + j, prefix) for j, prefix in enumerate(fed)}
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
