"""The Pipeline: builds the prompt (instruction, shots, retrieved passages), generates, parses, cites.

The same object answers a chat request (`run`, `stream`) and is scored by an eval (`run_batch`),
so an eval measures exactly what is served.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from ladder.errors import InvalidInput, LadderError
from ladder.models import service
from ladder.models.types import ChatRequest, ChatResponse, Delta, Message, Usage
from ladder.pipelines import cache
from ladder.pipelines.config import PipelineConfig
from ladder.pipelines.output_contract import OutputContract
from ladder.store.db import DEFAULT_PROJECT

Messages = list[Message] | list[dict] | str


@dataclass
class PipelineResult:
    text: str
    parsed: object
    valid: bool
    citations: list = field(default_factory=list)
    dropped_citations: int = 0
    usage: Usage = field(default_factory=Usage)
    latency_ms: float = 0.0
    hits: list = field(default_factory=list)
    finish_reason: str = "stop"
    cached: bool = False
    error: str | None = None
    batch_n: int = 1  # requests sent to the backend together (torch generates them in one pass)
    # label pipelines on a backend that can score: each label's probability (they sum to 1)
    label_probs: dict[str, float] | None = None
    abstained: bool = False  # the top probability was under `abstain_below`: `parsed` is the fallback
    scoring_ms: float = 0.0  # the label-scoring pass, per answer (not part of a batch's shared `latency_ms`)
    constraint_mode: str | None = None  # the backend's word on the constraint: "native" or "validated"

    @property
    def confidence(self) -> float | None:
        """The top label probability (None where the probabilities are absent)."""
        return max(self.label_probs.values()) if self.label_probs else None


def to_messages(messages: Messages) -> list[Message]:
    if isinstance(messages, str):
        return [Message("user", messages)]
    out = [m if isinstance(m, Message) else Message(m.get("role"), m.get("content")) for m in messages]
    if not out or out[-1].role != "user":
        raise InvalidInput("the conversation must end with a user message", param="messages")
    return out


def as_plain(obj) -> dict | object:
    """A hit or citation as JSON-able data (they come from the knowledge part as dataclasses)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {k: v for k, v in dataclasses.asdict(obj).items() if not hasattr(v, "shape")}
    if hasattr(obj, "model_dump"):
        return obj.model_dump()
    return obj


class Pipeline:
    def __init__(
        self,
        config: PipelineConfig,
        *,
        name: str | None = None,
        version: int | None = None,
        bot_id: str | None = None,
        project_id: str = DEFAULT_PROJECT,
        contract: OutputContract | None = None,
    ):
        self.config = config
        # A response_format asked for on this request: its instruction, constraint and check (output_contract).
        self.contract = contract
        self.name = name
        self.version = version
        self.id = bot_id
        self.project_id = project_id

    @property
    def label(self) -> str:
        return f"{self.name}@v{self.version}" if self.name else f"pipeline-{self.config.fingerprint()}"

    # -- prompt building -------------------------------------------------------------------------
    def _system_text(self, convo: list[Message]) -> str:
        parts = [self.config.system_prompt.strip(), self.config.output_instruction.strip()]
        parts += [m.content for m in convo if m.role == "system"]
        return "\n\n".join(p for p in parts if p)

    def _shots_for(self, queries: list[str]) -> list[list[dict]]:
        c = self.config
        if not c.few_shot:
            return [[] for _ in queries]
        if c.few_shot_mode == "fixed":
            chosen = c.few_shot[: c.few_shot_k] if c.few_shot_k else c.few_shot
            return [chosen for _ in queries]
        from ladder.pipelines.shots import nearest

        return nearest(c.few_shot, queries, c.few_shot_k)

    def _hits_for(self, queries: list[str]) -> list[list]:
        c = self.config
        if not c.kbs:
            return [[] for _ in queries]
        from ladder.knowledge import service as kb_service

        return [
            kb_service.search(c.kbs, q, k=c.retrieval_k, threshold=c.retrieval_threshold, project_id=self.project_id)
            for q in queries
        ]

    def prepare_batch(self, conversations: list[Messages]) -> list[tuple[list[Message], list]]:
        """The final prompt messages and the retrieved hits for each conversation."""
        convos = [to_messages(m) for m in conversations]
        queries = [cv[-1].content for cv in convos]
        shots, hits = self._shots_for(queries), self._hits_for(queries)
        out = []
        for cv, sh, hs in zip(convos, shots, hits, strict=True):
            msgs: list[Message] = []
            system = self._system_text(cv)
            if system:
                msgs.append(Message("system", system))
            for ex in sh:
                msgs += [Message("user", self.config.frame(ex["input"])), Message("assistant", ex["output"])]
            turns = [m for m in cv if m.role != "system"]
            msgs += turns[:-1] + [Message("user", self.config.frame(turns[-1].content))]
            if hs:
                from ladder.knowledge import rag

                msgs = list(rag.build_messages(msgs, hs))
            out.append((msgs, hs))
        return out

    def request(self, messages: list[Message]) -> ChatRequest:
        req = ChatRequest(messages, self.config.params)
        return self.contract.apply(req) if self.contract is not None else req

    def _score(
        self, result: PipelineResult, messages: list[Message], backend: str | None, scoring: bool = False
    ) -> None:
        """Label probabilities for a label answer, and the abstention they may call for.

        `scoring`: the pipeline answers by scoring, so a cached answer is scored by the same copy
        of the model as a fresh one (service.open_backend).
        """
        c = self.config
        if c.parser.kind != "label" or result.error:
            return
        from ladder.models.label_scores import label_probs

        t0 = time.perf_counter()
        try:
            probs = label_probs(
                c.model, messages, c.parser.labels, backend=backend, project_id=self.project_id, scoring=scoring
            )
        except LadderError:  # e.g. prompt plus label past the context: the answer stands without them
            probs = None
        result.scoring_ms = (time.perf_counter() - t0) * 1000
        self._set_probs(result, probs)

    def _set_probs(self, result: PipelineResult, probs: dict[str, float] | None) -> None:
        c = self.config
        result.label_probs = probs
        conf = result.confidence
        if c.abstain_below is not None and conf is not None and conf < c.abstain_below:
            # What a caller is served is the fallback: the item goes to a person.
            result.parsed, result.text, result.abstained = c.abstain_label, c.abstain_label, True

    # -- results -----------------------------------------------------------------------------------
    def _finish(self, resp: ChatResponse, hits: list, cached: bool = False) -> PipelineResult:
        parsed, valid = self.config.parser.parse(resp.text)
        if self.contract is not None:
            valid = valid and self.contract.check(resp.text).ok
        citations, dropped = [], 0
        if hits:
            from ladder.knowledge import rag

            citations, dropped = rag.extract_citations(resp.text, hits)
        return PipelineResult(
            resp.text,
            parsed,
            valid,
            list(citations),
            dropped,
            resp.usage,
            resp.latency_ms,
            list(hits),
            resp.finish_reason,
            cached,
            constraint_mode=getattr(resp, "constraint_mode", None),
        )

    # -- the three ways to call it ---------------------------------------------------------------
    def run(self, messages: Messages, *, source: str | None = "chat", use_cache: bool = False) -> PipelineResult:
        return self.run_batch([messages], batch_size=1, source=source, use_cache=use_cache)[0]

    def run_batch(
        self,
        conversations: list[Messages],
        *,
        batch_size: int = 16,
        backend: str | None = None,
        use_cache: bool = False,
        source: str | None = "batch",
        on_progress: Callable[[int], None] | None = None,
    ) -> list[PipelineResult]:
        """Answer many conversations; a local model generates `batch_size` of them per forward pass.

        With `use_cache`, answers already generated for the same weights, prompt and settings are
        reused (marked `cached`) and not generated or metered again.
        """
        backend = backend or self.config.backend
        prepared = self.prepare_batch(conversations)
        results: list[PipelineResult | None] = [None] * len(prepared)
        todo: list[tuple[int, ChatRequest, str | None]] = []
        by_scoring = self._answers_by_scoring(backend)
        for i, (msgs, hits) in enumerate(prepared):
            req = self.request(msgs)
            key = None
            if use_cache and cache.sampling_is_deterministic(req):
                key = cache.cache_key(self.config.model, backend, req, self.project_id)
                hit = cache.get(key)
                if hit is not None:
                    results[i] = self._finish(hit, hits, cached=True)
                    self._score(results[i], msgs, backend, by_scoring)
                    if on_progress:
                        on_progress(1)
                    continue
            todo.append((i, req, key))
        one_at_a_time = self._one_at_a_time(backend, by_scoring)
        if not by_scoring and one_at_a_time and self.config.parser.kind == "label":
            # Each answer is scored right after it is generated, while the context still holds its prompt.
            batch_size = 1
        if one_at_a_time:
            # The backend reuses what its cache holds of the previous prompt: in the order of their
            # messages, consecutive prompts share the longest starts (on the demo's RAG rungs, 3-18%
            # fewer prompt tokens to evaluate than in order of length).
            todo.sort(key=lambda t: [(m.role, m.content) for m in t[1].messages])
        else:
            # Requests of similar length share a pass, so little of it is spent on padding.
            todo.sort(key=lambda t: sum(len(m.content) for m in t[1].messages))
        for start in range(0, len(todo), max(1, batch_size)):
            chunk = todo[start : start + batch_size]
            reqs = [r for _, r, _ in chunk]
            answer = self._answer_labels if by_scoring else self._generate
            answers = answer(reqs, backend, source)
            for (i, _, key), resp in zip(chunk, answers, strict=True):
                scores = None
                if isinstance(resp, tuple):
                    resp, scores = resp
                if isinstance(resp, ChatResponse):
                    if key is not None:
                        cache.put(key, resp)
                    results[i] = self._finish(resp, prepared[i][1])
                    results[i].batch_n = len(chunk)
                    if scores is None:
                        self._score(results[i], prepared[i][0], backend)
                    else:
                        from ladder.models.label_scores import softmax

                        labels = dict.fromkeys(self.config.parser.labels)
                        self._set_probs(results[i], dict(zip(labels, softmax(scores), strict=True)))
                else:
                    results[i] = PipelineResult("", None, False, error=resp, hits=list(prepared[i][1]))
            if on_progress:
                on_progress(len(chunk))
        return results  # type: ignore[return-value]

    def _answers_by_scoring(self, backend: str | None) -> bool:
        """A greedy label pipeline on a local backend: its scoring pass gives the answer too (no decoding).

        Greedy decoding under the choice constraint picks, token by token, what the label trie's
        logits say (label_scores.greedy_choice), and those are the logits the label probabilities
        are computed from; so one pass answers and scores, and a served answer (`run`) is the
        answer an eval scored. Sampling, stop sequences and response formats decode as usual.
        """
        c = self.config
        if c.parser.kind != "label" or c.constraint is None or self.contract is not None:
            return False
        if c.temperature > 0 or c.stop:
            return False
        try:
            b = service.open_backend(c.model, backend=backend, project_id=self.project_id, scoring=True)
        except LadderError:  # each request reports it as its own error below
            return False
        return hasattr(b, "answer_labels")

    def _answer_labels(self, reqs: list[ChatRequest], backend: str | None, source: str | None) -> list:
        """(response, label scores) per request, or the error message for one that could not be answered."""
        c = self.config
        try:
            labels = list(dict.fromkeys(c.parser.labels))
            return service.answer_labels(
                c.model, reqs, labels, backend=backend, project_id=self.project_id, source=source
            )
        except LadderError as e:
            if len(reqs) == 1:
                return [e.message]
            return [r for req in reqs for r in self._answer_labels([req], backend, source)]

    def _one_at_a_time(self, backend: str | None, scoring: bool) -> bool:
        """The model's backend answers one request at a time and reuses its prompt cache (llama.cpp)."""
        try:
            b = service.open_backend(self.config.model, backend=backend, project_id=self.project_id, scoring=scoring)
        except LadderError:  # each request reports it as its own error below
            return False
        return getattr(b, "generates_in_batches", True) is False

    def _generate(self, reqs: list[ChatRequest], backend: str | None, source: str | None) -> list:
        """Responses, or the error message for a request that could not be answered (e.g. too long)."""
        name = self.config.model
        try:
            if len(reqs) == 1:
                return [service.chat(name, reqs[0], backend=backend, project_id=self.project_id, source=source)]
            return service.chat_batch(name, reqs, backend=backend, project_id=self.project_id, source=source)
        except LadderError as e:
            if len(reqs) == 1:
                return [e.message]
            return [r for req in reqs for r in self._generate([req], backend, source)]

    def stream(self, messages: Messages, *, source: str | None = "chat") -> Iterator[Delta | PipelineResult]:
        """Yields text deltas as they are generated, then one PipelineResult with parse and citations."""
        ((msgs, hits),) = self.prepare_batch([messages])
        t0 = time.perf_counter()
        req = self.request(msgs)
        gen = service.stream(
            self.config.model, req, backend=self.config.backend, project_id=self.project_id, source=source
        )
        text, usage, finish = [], Usage(), "stop"
        try:
            for d in gen:
                if d.text:
                    text.append(d.text)
                    yield d
                if d.usage is not None:
                    usage = d.usage
                if d.finish_reason:
                    finish = d.finish_reason
        finally:
            gen.close()
        resp = ChatResponse("".join(text), finish, usage, (time.perf_counter() - t0) * 1000, self.config.model)
        result = self._finish(resp, hits)
        # The text is already out; an abstention shows in `parsed`/`abstained` of this last item.
        self._score(result, msgs, self.config.backend)
        yield result
