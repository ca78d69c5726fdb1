"""Whether constrained greedy decoding answers a validation item's own label, read off its loss pass.

The validation loss runs each item teacher-forced: the prompt, then the reference label's
tokens. Greedy decoding under the choice constraint answers the reference exactly when, at every
node of the label trie on the reference's path where it has a choice, the reference's next token
(or EOS, where the reference ends and a longer label goes on) has the highest logit among the
allowed ones: a path that leaves the reference's never comes back, since labels are distinct. The
logits at those nodes are the ones the loss pass already computed, so accuracy needs no second
pass (label_scores.greedy_choice walks the same trie, ties to the lowest id as argmax does).
Items this cannot settle (a reference that is not exactly one label's canonical tokens, a
truncated example) are left to the meter's scoring pass.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from ladder.tuning.encode import IGNORE, Encoded


@dataclass(frozen=True)
class Choice:
    position: int  # the input position whose logits predict this node's next token
    kids: tuple[int, ...]  # the label tokens allowed after the node
    may_end: bool  # the node is a whole label: EOS is allowed too
    want: int | None  # the reference's next token; None: EOS


class GoldWalks:
    """`read(i, positions, logits)` for trainer.evaluate; `settled[i]` says whether item i is answered right."""

    def __init__(
        self,
        labels: list[str],
        label_tokens: list[list[int]],
        prompts: list[list[int]],
        references: list[str],
        data: list[Encoded],
        eos_ids: set[int],
    ):
        from ladder.pipelines.parsers import normalise

        self.eos_ids = sorted(eos_ids)
        clash = Counter(normalise(x) for x in labels)
        index = {x: k for k, x in enumerate(labels) if clash[normalise(x)] == 1}
        self.walks: dict[int, list[Choice]] = {}
        for i, (prompt, ref, e) in enumerate(zip(prompts, references, data, strict=True)):
            if ref in index:
                walk = self._walk(label_tokens, label_tokens[index[ref]], prompt, e)
                if walk is not None:
                    self.walks[i] = walk
        self.settled: dict[int, bool] = {}

    @staticmethod
    def _walk(conts: list[list[int]], gold: list[int], prompt: list[int], e: Encoded) -> list[Choice] | None:
        s = len(prompt)
        if e.input_ids[:s] != prompt or e.input_ids[s : s + len(gold)] != gold:
            return None  # trained on other tokens than the served prompt and the canonical label
        whole = {tuple(c) for c in conts}
        out = []
        for j in range(len(gold) + 1):
            node = tuple(gold[:j])
            kids = tuple(sorted({c[j] for c in conts if len(c) > j and tuple(c[:j]) == node}))
            may_end = node in whole
            if len(kids) + may_end < 2:
                continue  # forced: no choice to read
            if s + j >= len(e.labels) or e.labels[s + j] == IGNORE:
                return None  # the loss pass has no logits there (truncated)
            out.append(Choice(s - 1 + j, kids, may_end, gold[j] if j < len(gold) else None))
        return out

    def __call__(self, i: int, positions: list[int], logits) -> None:
        walk = self.walks.get(i)
        if walk is None:
            return
        at = {p: k for k, p in enumerate(positions)}
        if any(c.position not in at for c in walk):
            return
        right = True
        for c in walk:
            row = logits[at[c.position]]
            options = [(float(row[t]), -t, t) for t in c.kids]
            if c.may_end:
                options += [(float(row[t]), -t, None) for t in self.eos_ids]
            if max(options)[2] != c.want:
                right = False
                break
        self.settled[i] = right
