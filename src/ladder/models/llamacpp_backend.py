"""The llama.cpp backend (llama-cpp-python): GGUF files, the fast single-stream path on CPU."""

from __future__ import annotations

import functools
import os
import threading
import time
import weakref
from collections.abc import Iterator

from ladder.errors import BackendError
from ladder.models.constrain_llamacpp import TokenMask, eog_tokens, llg_tokenizer
from ladder.models.constraints import Constraint
from ladder.models.grammars import compile_matcher
from ladder.models.registry import ModelSpec
from ladder.models.serving_copy import serving_gguf
from ladder.models.text_stops import StopScanner
from ladder.models.types import ChatRequest, ChatResponse, Delta, Message, Usage
from ladder.settings import get_settings

# llama.cpp's default context for SmolLM2 is its trained 8192; cap it so the KV cache stays small
# on laptop-class machines while still fitting any prompt the platform builds.
MAX_CONTEXT = 8192
# Sequences one context can hold: label scoring decodes every label of a set as its own sequence in
# one batch (label_scores); a set with more labels is scored one label at a time.
SEQUENCE_SLOTS = 64
# How often the free cores are sampled (a 20 ms wait): once per call cost an eval of short prompts
# a tenth of its time, and a job that starts mid-eval is still seen within this.
THREADS_RECHECK_S = 2.0
# Compiled grammars kept per backend; a pipeline uses one or two, a server a few dozen.
GRAMMAR_CACHE_SIZE = 64


class LlamaCppBackend:
    remote = False
    # One context answers one request at a time: `chat_batch` is a loop, not a shared pass.
    generates_in_batches = False

    def __init__(self, spec: ModelSpec):
        from llama_cpp import Llama
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        self.fixed_threads = get_settings().threads
        self._threads_checked = float("-inf")  # when _fit_threads last sampled the cores
        threads = self.fixed_threads or os.cpu_count() or 1
        path = serving_gguf(spec)
        try:
            # flash attention: 119 vs 101 tokens/s decoding SmolLM2 on 2 CPU cores (measured here).
            self.llm = Llama(
                model_path=str(path),
                n_ctx=MAX_CONTEXT,
                n_threads=threads,
                n_threads_batch=threads,
                verbose=False,
                seed=0,
                flash_attn=True,
            )
        except Exception as e:  # llama.cpp raises ValueError/RuntimeError on unreadable files
            raise BackendError(f"llama.cpp could not load {path}: {e}") from e
        self.seq_slots = _with_sequence_slots(self.llm, SEQUENCE_SLOTS)
        # Free the native model while the interpreter is still whole (llama-cpp-python's own __del__
        # runs too late at exit and prints a TypeError).
        weakref.finalize(self, self.llm.close)
        self.name = spec.name
        meta = self.llm.metadata
        self.context_length = min(int(meta.get("llama.context_length", MAX_CONTEXT)), self.llm.n_ctx())
        template = meta.get("tokenizer.chat_template")
        if not template:
            raise BackendError(f"{path} carries no chat template (tokenizer.chat_template)")

        def token_text(key: str) -> str:
            tid = meta.get(key)
            return self.llm.detokenize([int(tid)], special=True).decode("utf-8", "replace") if tid else ""

        self.formatter = Jinja2ChatFormatter(
            template,
            eos_token=token_text("tokenizer.ggml.eos_token_id"),
            bos_token=token_text("tokenizer.ggml.bos_token_id"),
        )
        # One context serves one request at a time.
        self._lock = threading.Lock()
        # Per instance: the check below parses against this model's vocabulary.
        self._grammar = functools.lru_cache(maxsize=GRAMMAR_CACHE_SIZE)(self._compile_grammar)

    @functools.cached_property
    def _mask_tokenizer(self):
        """llguidance's view of the vocabulary, built on the first constrained request (about 0.4 s)."""
        return llg_tokenizer(self.llm, sorted(self.eos_ids))

    def _compile_grammar(self, constraint: Constraint):
        """The llguidance matcher for a constraint (see constrain_llamacpp); InvalidInput if it cannot be held."""
        encode = lambda s: self.llm.tokenize(s.encode("utf-8"), add_bos=False, special=False)  # noqa: E731
        return compile_matcher(self._mask_tokenizer, constraint, encode)

    def grammar(self, constraint: Constraint | None):
        """The compiled constraint (None: free text), cached per constraint."""
        return self._grammar(constraint) if constraint is not None else None

    def _prompt(self, messages: list[Message]) -> tuple[list[int], list[str]]:
        r = self.formatter(messages=[m.as_dict() for m in messages])
        stops = r.stop if isinstance(r.stop, list) else ([r.stop] if r.stop else [])
        return self.llm.tokenize(r.prompt.encode("utf-8"), add_bos=False, special=True), stops

    def count_tokens(self, messages: list[Message]) -> int:
        return len(self._prompt(messages)[0])

    def score_labels(self, messages: list[Message], labels: list[str]) -> list[float]:
        """Each label's mean token log-probability as the answer to `messages` (see label_scores)."""
        from ladder.models.label_scores import llamacpp_scores

        return llamacpp_scores(self, messages, labels)

    def answer_labels(self, requests: list[ChatRequest], labels: list[str]) -> list[tuple[ChatResponse, list[float]]]:
        """Greedy constrained answers with every label's score, from the scoring pass alone (see torch's)."""
        from ladder.models.label_scores import as_response, llamacpp_pass

        out = []
        for r in requests:
            t0 = time.perf_counter()
            p = llamacpp_pass(self, r.messages, labels)
            out.append((as_response(p, labels, (time.perf_counter() - t0) * 1000, self.name), p.scores))
        return out

    @functools.cached_property
    def eos_ids(self) -> set[int]:
        """The tokens that end a generation (llama.cpp's end-of-generation set: EOS, EOT, <|im_end|>...)."""
        return set(eog_tokens(self.llm))

    def _fit_threads(self) -> None:
        """Use only the cores other processes leave free.

        llama.cpp's threads wait for each other by spinning; with one core taken by another
        process (a training job, a test run), two threads on two cores run 20-50x slower than
        one thread. Measured here: 0.3 vs 15 tokens/s for SmolLM2 with a LoRA job running.
        """
        if self.fixed_threads:
            return
        now = time.monotonic()
        if now - self._threads_checked < THREADS_RECHECK_S:
            return
        self._threads_checked = now
        import psutil

        cores = os.cpu_count() or 1
        busy = psutil.cpu_percent(interval=0.02) / 100 * cores
        threads = max(1, min(cores, int(cores - busy + 0.5)))
        self.llm._ctx.set_n_threads(threads, threads)

    def _completion(self, request: ChatRequest, stream: bool):
        from llama_cpp import LogitsProcessorList

        self._fit_threads()
        tokens, template_stops = self._prompt(request.messages)
        p = request.params
        compiled = self.grammar(p.constraint)
        # The mask allows EOS only once the constraint is complete, and nothing else after.
        mask = None
        if compiled is not None:
            mask = TokenMask(compiled, self._mask_tokenizer.eos_tokens, self.llm.n_vocab())
        out = self.llm.create_completion(
            tokens,
            max_tokens=p.max_tokens,
            temperature=p.temperature,
            top_p=p.top_p,
            seed=p.seed if p.seed is not None else -1,
            stop=list(p.stop) + template_stops,
            stream=stream,
            top_k=0 if p.temperature > 0 else 40,
            repeat_penalty=1.0,
            logits_processor=LogitsProcessorList([mask]) if mask is not None else None,
        )
        if mask is None:
            return len(tokens), out
        if stream:
            return len(tokens), _checked_chunks(out, mask)
        mask.raise_error()
        return len(tokens), out

    def chat(self, request: ChatRequest) -> ChatResponse:
        t0 = time.perf_counter()
        with self._lock:
            n_prompt, out = self._completion(request, stream=False)
        choice = out["choices"][0]
        usage = out.get("usage") or {}
        return ChatResponse(
            choice["text"],
            "length" if choice.get("finish_reason") == "length" else "stop",
            Usage(n_prompt, int(usage.get("completion_tokens", 0))),
            (time.perf_counter() - t0) * 1000,
            self.name,
            constraint_mode="none" if request.params.constraint is None else "native",
        )

    def chat_batch(self, requests: list[ChatRequest]) -> list[ChatResponse]:
        for r in requests:  # a bad constraint fails the batch before any row is generated
            self.grammar(r.params.constraint)
        return [self.chat(r) for r in requests]

    def stream(self, request: ChatRequest) -> Iterator[Delta]:
        with self._lock:
            n_prompt, chunks = self._completion(request, stream=True)
            n_out, finish = 0, "stop"
            scanner = StopScanner([])
            text = ""
            try:
                for chunk in chunks:
                    choice = chunk["choices"][0]
                    if choice.get("text"):
                        n_out += 1
                        text += choice["text"]
                        new = scanner.feed(text)
                        if new:
                            yield Delta(new)
                    if choice.get("finish_reason"):
                        finish = "length" if choice["finish_reason"] == "length" else "stop"
            finally:
                chunks.close()
            tail = scanner.final(text)
            if tail:
                yield Delta(tail)
            yield Delta("", finish, Usage(n_prompt, n_out))


def _checked_chunks(chunks, mask: TokenMask) -> Iterator[dict]:
    """The stream's chunks, then the mask's failure raised, if it had one."""
    try:
        yield from chunks
    finally:
        chunks.close()
    mask.raise_error()


def _with_sequence_slots(llm, slots: int) -> int:
    """Give `llm` a context that holds `slots` sequences in one unified KV cache; the slots it got.

    `Llama` makes its context with one sequence and has no parameter for more, so the context is
    made again here with the same settings and `n_seq_max` raised (the unified cache keeps the
    memory of one `n_ctx` cache). Where that fails, the first context stays, with its one slot.
    """
    import contextlib

    import llama_cpp
    from llama_cpp import _internals

    if llm.lora_path:  # `Llama` set its adapter on the first context; a new one would serve the bare base
        return 1
    params = llm.context_params
    params.n_seq_max = max(1, min(slots, int(llama_cpp.llama_max_parallel_sequences())))
    params.kv_unified = True
    try:
        ctx = _internals.LlamaContext(model=llm._model, params=params, verbose=False)
    except ValueError:
        params.n_seq_max = 1
        return 1
    llm._ctx.close()
    llm._ctx = llm._stack.enter_context(contextlib.closing(ctx))
    return params.n_seq_max
