"""Per-row token masks that hold torch generation to a `Constraint`, computed by llguidance.

Chosen by measurement (`bench/constrained.py`: SmolLM2's 49,152-token vocabulary, 2 shared CPU
cores, one thread, medians of 20; docs/benchmarks.md "Constrained decoding on CPU"):

    library      grammar      compile ms   mask µs/token
    xgrammar     10 labels    0.74          1.0
    xgrammar     nested JSON  15.79         1.1
    llguidance   10 labels    1.03         64.4
    llguidance   nested JSON  1.02         18.4

xgrammar computes a mask faster, but either is far below one torch decode step of SmolLM2 here
(about 59 ms single-stream, 190 ms for a batch of 32), while xgrammar compiles a schema 15x
slower and pulls in triton (about 1 GB on Linux x86_64, unused on CPU); llguidance has no
dependencies at all. Its tokenizer view costs about 0.7 s to build, so it is made once per
backend, on the first constrained request.
"""

from __future__ import annotations

import functools

import torch

from ladder.errors import BackendError
from ladder.models.constraints import Constraint
from ladder.models.grammars import compile_matcher

# Compiled grammars kept per backend; a pipeline uses one or two, a server a few dozen.
GRAMMAR_CACHE_SIZE = 64


class TokenMasks:
    """Compiles constraints for one tokenizer and hands out a fresh matcher per generated row."""

    def __init__(self, hf_tokenizer, vocab_size: int, eos_ids: set[int]):
        """`vocab_size`: the model's logits width (at least the tokenizer's; extra ids are never allowed)."""
        self._hf_tokenizer = hf_tokenizer
        self.vocab_size = max(vocab_size, len(hf_tokenizer))
        self._eos_ids = sorted(eos_ids)
        self._tokenizer = None
        # Bound per instance (a module-level cache would outlive the backend and its tokenizer).
        self._compiled = functools.lru_cache(maxsize=GRAMMAR_CACHE_SIZE)(self._compile)

    @property
    def tokenizer(self):
        if self._tokenizer is None:
            import llguidance.hf

            self._tokenizer = llguidance.hf.from_tokenizer(
                self._hf_tokenizer, n_vocab=self.vocab_size, eos_token=self._eos_ids
            )
        return self._tokenizer

    def _compile(self, constraint: Constraint):
        return compile_matcher(
            self.tokenizer, constraint, lambda c: self._hf_tokenizer.encode(c, add_special_tokens=False)
        )

    def matcher(self, constraint: Constraint):
        """A matcher at the start of the constraint; rows with one constraint share its compiled form."""
        # deep_copy shares the compiled lexer and parser tables: 2 µs against 1.3 ms for a new one.
        return self._compiled(constraint).deep_copy()

    def check(self, constraints: list[Constraint | None]) -> None:
        """Compile every constraint up front, so a bad one fails before any row is generated."""
        for c in dict.fromkeys(c for c in constraints if c is not None):
            self._compiled(c)


class RowMasks:
    """The matchers of one batch: masks the constrained rows' logits and follows their tokens."""

    def __init__(self, masks: TokenMasks, constraints: list[Constraint | None]):
        self.matchers = [masks.matcher(c) if c is not None else None for c in constraints]
        self.rows = [b for b, m in enumerate(self.matchers) if m is not None]
        words = (masks.vocab_size + 31) // 32
        self._bits = torch.zeros((len(constraints), words), dtype=torch.int32)
        self._shifts = torch.arange(32, dtype=torch.int32)

    def apply(self, logits: torch.Tensor, live: list[bool]) -> None:
        """Set to -inf, in place, every logit a live constrained row's grammar does not allow next."""
        import llguidance.torch

        rows = [b for b in self.rows if live[b]]
        if not rows:
            return
        for b in rows:
            m = self.matchers[b]
            llguidance.torch.fill_next_token_bitmask(m, self._bits, b)
            if m.is_error():
                raise BackendError(f"constrained decoding failed in row {b}: {m.get_error()}")
        idx = torch.tensor(rows)
        # Unpack 32 tokens per int32 word, low bit first (llguidance's layout).
        allowed = ((self._bits[idx].unsqueeze(-1) >> self._shifts) & 1).flatten(1)[:, : logits.shape[-1]].bool()
        idx = idx.to(logits.device)
        logits[idx] = logits[idx].masked_fill(~allowed.to(logits.device), float("-inf"))

    def advance(self, row: int, token: int) -> None:
        m = self.matchers[row]
        if m is not None and not m.consume_token(token):
            raise BackendError(f"constrained decoding failed in row {row}: {m.get_error()}")
