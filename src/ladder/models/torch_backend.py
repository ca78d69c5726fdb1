"""The torch backend: any local HF model (or de-quantised GGUF), LoRA adapters unmerged, batched decoding."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import torch

from ladder.models.constrain_torch import RowMasks, TokenMasks
from ladder.models.registry import ModelSpec, local_adapter
from ladder.models.text_stops import StopScanner, cut_at_stop
from ladder.models.types import ChatRequest, ChatResponse, Delta, GenerationParams, Message, Usage
from ladder.settings import get_settings
from ladder.store.db import DEFAULT_PROJECT

# Below this many common leading tokens a batch is run without sharing its prefix (no gain).
MIN_SHARED_PREFIX = 16


def pick_device() -> torch.device:
    want = get_settings().device
    if want == "cuda" or (want == "auto" and torch.cuda.is_available()):
        return torch.device("cuda")
    return torch.device("cpu")


def eos_token_ids(model, tokenizer) -> set[int]:
    """The tokens that end an answer: the tokenizer's EOS and the model's generation config's."""
    eos = {tokenizer.eos_token_id}
    gen_eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    eos.update(gen_eos if isinstance(gen_eos, list) else [gen_eos])
    return {e for e in eos if e is not None}


class TorchBackend:
    """A transformers causal LM with the model's own chat template; greedy or seeded sampling."""

    remote = False

    def __init__(self, name: str, model, tokenizer, device: torch.device):
        self.name = name
        self.model = model.eval()
        self.tok = tokenizer
        self.device = device
        self.context_length = int(getattr(model.config, "max_position_embeddings", 2048) or 2048)
        self.eos_ids = eos_token_ids(model, tokenizer)
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        vocab = model.get_output_embeddings().weight.shape[0] if model.get_output_embeddings() is not None else 0
        self.masks = TokenMasks(tokenizer, vocab, self.eos_ids)

    @classmethod
    def from_spec(cls, spec: ModelSpec, project_id: str = DEFAULT_PROJECT) -> TorchBackend:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from ladder.models.hf import hf_dir, quiet_loading

        threads = get_settings().threads
        if threads:
            torch.set_num_threads(threads)
        device = pick_device()
        base_dir = hf_dir(spec, project_id)
        spec = local_adapter(spec)
        dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
        with quiet_loading():
            model = AutoModelForCausalLM.from_pretrained(base_dir, dtype=dtype).to(device)
            tok_dir = spec.adapter_path if spec.adapter_path and _has_tokenizer(spec.adapter_path) else base_dir
            tok = AutoTokenizer.from_pretrained(tok_dir)
            if spec.adapter_path:
                from peft import PeftModel

                # Applied on top of the base, not merged: the base stays as it is on disk.
                model = PeftModel.from_pretrained(model, spec.adapter_path).to(device)
        return cls(spec.name, model, tok, device)

    def memory_bytes(self) -> int:
        return sum(p.numel() * p.element_size() for p in self.model.parameters())

    # -- prompts ---------------------------------------------------------------------------
    def encode(self, messages: list[Message]) -> list[int]:
        ids = self.tok.apply_chat_template([m.as_dict() for m in messages], add_generation_prompt=True, tokenize=True)
        if isinstance(ids, dict) or hasattr(ids, "input_ids"):
            ids = ids["input_ids"]
        return list(ids)

    def count_tokens(self, messages: list[Message]) -> int:
        return len(self.encode(messages))

    def score_labels(self, messages: list[Message], labels: list[str]) -> list[float]:
        """Each label's mean token log-probability as the answer to `messages` (see label_scores)."""
        from ladder.models.label_scores import torch_scores

        return torch_scores(self, messages, labels)

    def answer_labels(self, requests: list[ChatRequest], labels: list[str]) -> list[tuple[ChatResponse, list[float]]]:
        """Greedy constrained answers to label requests with every label's score, from one scoring pass.

        What `chat_batch` would answer under the labels' choice constraint at temperature 0
        (`label_scores.greedy_choice`), without decoding: the pass that scores the labels already
        holds every logit the decoding would read.
        """
        from ladder.models.label_scores import as_response, torch_passes

        t0 = time.perf_counter()
        passes = torch_passes(self, [self.encode(r.messages) for r in requests], labels)
        latency = (time.perf_counter() - t0) * 1000
        return [(as_response(p, labels, latency, self.name), p.scores) for p in passes]

    # -- generation ------------------------------------------------------------------------
    def chat(self, request: ChatRequest) -> ChatResponse:
        return self.chat_batch([request])[0]

    def chat_batch(self, requests: list[ChatRequest]) -> list[ChatResponse]:
        """Requests with the same sampling settings share one left-padded batch."""
        self.masks.check([r.params.constraint for r in requests])
        out: list[ChatResponse | None] = [None] * len(requests)
        groups: dict[tuple, list[int]] = {}
        for i, r in enumerate(requests):
            p = r.params
            groups.setdefault((p.temperature, p.top_p, p.seed, tuple(p.stop)), []).append(i)
        for idx in groups.values():
            t0 = time.perf_counter()
            prompts = [self.encode(requests[i].messages) for i in idx]
            results = self._generate(prompts, [requests[i].params for i in idx])
            latency = (time.perf_counter() - t0) * 1000
            for i, prompt, (ids, finish) in zip(idx, prompts, results, strict=True):
                text = self.tok.decode(ids, skip_special_tokens=True)
                text, hit = cut_at_stop(text, requests[i].params.stop)
                out[i] = ChatResponse(
                    text,
                    "stop" if hit else finish,
                    Usage(len(prompt), len(ids)),
                    latency,
                    self.name,
                    constraint_mode="none" if requests[i].params.constraint is None else "native",
                )
        return out  # type: ignore[return-value]

    def stream(self, request: ChatRequest) -> Iterator[Delta]:
        self.masks.check([request.params.constraint])
        prompt = self.encode(request.messages)
        scanner = StopScanner(request.params.stop)
        ids: list[int] = []
        finish = "length"
        for token, done in self._decode_steps([prompt], [request.params]):
            if token is not None and token[0] is not None:  # None: this row just hit EOS
                ids.append(token[0])
                new = scanner.feed(self.tok.decode(ids, skip_special_tokens=True))
                if new:
                    yield Delta(new)
                if scanner.stopped:
                    finish = "stop"
                    break
            if done is not None:
                finish = done[0]
        tail = scanner.final(self.tok.decode(ids, skip_special_tokens=True))
        if tail:
            yield Delta(tail)
        yield Delta("", finish, Usage(len(prompt), len(ids)))

    def _generate(self, prompts: list[list[int]], params: list[GenerationParams]) -> list[tuple[list[int], str]]:
        ids: list[list[int]] = [[] for _ in prompts]
        finish = ["length"] * len(prompts)
        stopped = [False] * len(prompts)
        stops = params[0].stop
        for tokens, done in self._decode_steps(prompts, params, stopped):
            if done is not None:
                finish = done
                continue
            for b, t in enumerate(tokens):
                if t is not None:
                    ids[b].append(t)
                    # A row that produced a stop sequence needs no more tokens.
                    if stops and cut_at_stop(self.tok.decode(ids[b][-16:]), stops)[1]:
                        stopped[b] = True
        return list(zip(ids, finish, strict=True))

    @torch.inference_mode()
    def _decode_steps(
        self, prompts: list[list[int]], params: list[GenerationParams], stopped: list[bool] | None = None
    ):
        """Yields (tokens per row, None for finished rows; None) each step, then (None, finish reasons).

        The caller may set `stopped[b]` to end row b early (a stop sequence was produced). A row
        with a constraint samples only what its grammar allows next, EOS only once it is complete.
        """
        from transformers import DynamicCache

        p0 = params[0]
        max_new = [p.max_tokens for p in params]
        n = len(prompts)
        gen = None
        if p0.temperature > 0:
            gen = torch.Generator(device=self.device)
            gen.manual_seed(p0.seed if p0.seed is not None else torch.seed())
        cache = DynamicCache()
        shared = shared_prefix_len(prompts) if n > 1 else 0
        if shared:
            # The rows' common start (system prompt, instruction, fixed shots) is run once and its
            # keys/values copied to every row; only the different tails are run as a batch.
            prefix = torch.tensor([prompts[0][:shared]], device=self.device)
            self.model(input_ids=prefix, cache=cache, use_cache=True, logits_to_keep=1)
            cache.batch_repeat_interleave(n)
        tails = [p[shared:] for p in prompts]
        width = max(len(t) for t in tails)
        input_ids = torch.full((n, width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((n, shared + width), dtype=torch.long)
        mask[:, :shared] = 1
        for b, t in enumerate(tails):  # left-padded tails: [shared prefix][padding][tail]
            input_ids[b, width - len(t) :] = torch.tensor(t)
            mask[b, shared + width - len(t) :] = 1
        input_ids, mask = input_ids.to(self.device), mask.to(self.device)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)[:, shared:]
        finished = [False] * n
        finish = ["length"] * n
        constraints = [p.constraint for p in params]
        constrained = RowMasks(self.masks, constraints) if any(constraints) else None
        step_input, step_pos = input_ids, positions
        for step in range(max(max_new)):
            logits = (
                self.model(
                    input_ids=step_input,
                    attention_mask=mask,
                    position_ids=step_pos,
                    cache=cache,
                    use_cache=True,
                    logits_to_keep=1,
                )
                .logits[:, -1, :]
                .float()
            )
            if constrained is not None:
                # Masked before temperature and top_p, so sampling renormalises over allowed tokens.
                constrained.apply(logits, [not f for f in finished])
            nxt = self._pick(logits, p0, gen)
            tokens: list[int | None] = []
            for b in range(n):
                if stopped is not None and stopped[b] and not finished[b]:
                    finished[b], finish[b] = True, "stop"
                if finished[b]:
                    tokens.append(None)
                    continue
                t = int(nxt[b])
                if t in self.eos_ids:
                    finished[b], finish[b] = True, "stop"
                    tokens.append(None)
                    continue
                tokens.append(t)
                if constrained is not None:
                    constrained.advance(b, t)
                if step + 1 >= max_new[b]:
                    finished[b] = True
            yield tokens, None
            if all(finished):
                break
            nxt = torch.where(torch.tensor(finished, device=self.device), self.pad_id, nxt)
            step_input = nxt.view(n, 1)
            mask = torch.cat([mask, torch.ones((n, 1), dtype=mask.dtype, device=self.device)], dim=1)
            step_pos = step_pos[:, -1:] + 1
        yield None, finish

    @staticmethod
    def _pick(logits: torch.Tensor, p: GenerationParams, gen) -> torch.Tensor:
        if p.temperature <= 0:
            return logits.argmax(-1)
        probs = torch.softmax(logits / p.temperature, dim=-1)
        if p.top_p < 1.0:
            sorted_p, order = probs.sort(dim=-1, descending=True)
            keep = sorted_p.cumsum(-1) - sorted_p < p.top_p
            sorted_p = sorted_p * keep
            probs = torch.zeros_like(probs).scatter(-1, order, sorted_p)
        return torch.multinomial(probs, 1, generator=gen).squeeze(-1)


def shared_prefix_len(prompts: list[list[int]]) -> int:
    """Tokens at the start common to all prompts, worth computing once; 0 when too few to pay.

    Every prompt keeps at least one token of its own, which produces its first logits.
    """
    first, shortest = prompts[0], min(len(p) for p in prompts)
    n = 0
    while n < shortest - 1 and all(p[n] == first[n] for p in prompts):
        n += 1
    return n if n >= MIN_SHARED_PREFIX else 0


def _has_tokenizer(path: str) -> bool:
    return (Path(path) / "tokenizer_config.json").exists()
