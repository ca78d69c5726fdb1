"""llama.cpp constraints: llguidance token masks applied through llama-cpp-python's `logits_processor`.

Every constraint (labels, a JSON schema, a regex) is compiled by llguidance, the compiler the
torch backend uses (`grammars.grammar_text`: labels as their canonical tokens, JSON in the same
layout), and enforced through `logits_processor`: before each token the matcher's mask sets every
token the constraint does not allow next to -inf, and each sampled token is fed back into the
matcher. llguidance enforces numeric bounds (`minimum`, `maximum`, the exclusive ones,
`multipleOf`), which llama-cpp-python's GBNF converter drops without a word, and computes a mask
far faster than llama.cpp's grammar sampler checks the vocabulary. Measured on SmolLM2-135M Q4,
one thread, 2 shared CPU cores, a 5-key JSON schema (enum, boolean, number, nested object, string),
12 samples of up to 80 tokens at temperature 1.0 per arm, two runs (a one-off script):

    decoding                                  tokens/s   ms/token
    free                                      74         13.5
    llama-cpp-python GBNF, grammar sampler    53-55      18.3-18.8
    llguidance mask, logits_processor         72-73      13.7-13.9  (the call alone: 0.13-0.21 ms)

What llguidance cannot enforce is refused as on the torch backend (`grammars.compile_matcher`).

The tokenizer view takes about 0.4 s, once per backend; a constraint compiles in under 1 ms.
"""

from __future__ import annotations

import warnings

import numpy as np

from ladder.errors import BackendError


def eog_tokens(llm) -> list[int]:
    """The tokens llama.cpp ends a generation on (EOS, EOT, <|im_end|>, ...)."""
    import llama_cpp

    vocab = llm._model.vocab
    return [t for t in range(llama_cpp.llama_vocab_n_tokens(vocab)) if llama_cpp.llama_vocab_is_eog(vocab, t)]


def llg_tokenizer(llm, eog: list[int]):
    """llguidance's view of a loaded model's vocabulary (about 0.4 s for SmolLM2's 49,152 tokens).

    Every end-of-generation token counts as EOS (SmolLM2 has three: <|endoftext|>, <|im_end|> and
    <reponame>): llama.cpp stops on any of them, so the mask allows them only where the constraint
    is complete, and then nothing else.
    """
    from llguidance.llamacpp import lltokenizer_from_vocab

    with warnings.catch_warnings():
        # llguidance reads each token's attributes through a name llama-cpp-python has deprecated:
        # one DeprecationWarning per token (49,152) otherwise.
        warnings.simplefilter("ignore", DeprecationWarning)
        return lltokenizer_from_vocab(llm._model.vocab, n_vocab=llm.n_vocab(), eos_token=eog or None)


class TokenMask:
    """A llama-cpp-python logits processor that holds one generation to a compiled matcher.

    llama-cpp-python calls it before each sampled token with the tokens so far (prompt included)
    and the logits, in token order; the tokens it has not seen yet are the ones sampled since.
    It runs inside a C callback, where a raised exception would be printed and the logits left
    unmasked, so a failure instead allows only EOS (ending the generation) and is kept in `error`
    for the backend to raise once llama.cpp returns.
    """

    def __init__(self, matcher, eos_tokens: list[int], n_vocab: int):
        """`matcher`: a compiled one from `grammars.compile_matcher`, left as it is (each generation gets a copy)."""
        self.matcher = matcher.deep_copy()  # shares the compiled tables: microseconds, not a compile
        self.error: str | None = None
        self._eos = list(eos_tokens)
        self._start: int | None = None
        self._seen = 0
        self._bits = np.zeros((n_vocab + 31) // 32, dtype=np.int32)

    def __call__(self, input_ids: np.ndarray, scores: np.ndarray) -> np.ndarray:
        if self._start is None:
            self._start = len(input_ids)
        new = input_ids[self._start + self._seen :]
        if self.error is None and len(new):
            self._seen += len(new)
            if not self.matcher.consume_tokens([int(t) for t in new]):
                self.error = self.matcher.get_error() or f"token {int(new[-1])} was not allowed"
        if self.error is None:
            self.matcher.unsafe_compute_mask_ptr(self._bits.ctypes.data, self._bits.nbytes)
            if self.matcher.is_error():
                self.error = self.matcher.get_error()
        if self.error is not None:
            scores[:] = -np.inf
            scores[self._eos] = 0.0
            return scores
        # 32 tokens a word, low bit first (llguidance's layout, little-endian words).
        allowed = np.unpackbits(self._bits.view(np.uint8), bitorder="little", count=len(scores)).astype(bool)
        scores[~allowed] = -np.inf
        return scores

    def raise_error(self) -> None:
        if self.error is not None:
            raise BackendError(f"constrained decoding failed: {self.error}")
