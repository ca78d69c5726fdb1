"""The one interface every backend speaks: chat request in, chat response out."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol

from ladder.models.constraints import Constraint
from ladder.models.text_stops import stop_list

ROLES = ("system", "user", "assistant")


@dataclass
class Message:
    role: str
    content: str

    def as_dict(self) -> dict:
        return {"role": self.role, "content": self.content}


@dataclass
class GenerationParams:
    """Greedy (temperature 0) and seeded by default, so runs are reproducible."""

    max_tokens: int = 256
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int | None = 0
    stop: list[str] = field(default_factory=list)
    # Decode only what the constraint allows (None: free text); each backend compiles it.
    constraint: Constraint | None = None

    def __post_init__(self) -> None:
        self.stop = stop_list(self.stop)  # one string is one stop sequence, never its characters
        if self.constraint is not None and self.constraint.kind == "choice":
            # A grammar over the label strings also admits non-canonical token splits (one token per
            # byte at worst), and a label cut short is a format failure. The answer ends at EOS once
            # a label is complete, so the larger cap costs nothing.
            longest = max(len(c.encode()) for c in self.constraint.choices)
            self.max_tokens = max(self.max_tokens, longest + 1)


@dataclass
class ChatRequest:
    messages: list[Message]
    params: GenerationParams = field(default_factory=GenerationParams)

    @classmethod
    def of(cls, messages: list[dict] | list[Message], **params) -> ChatRequest:
        msgs = [m if isinstance(m, Message) else Message(m.get("role"), m.get("content")) for m in messages]
        return cls(msgs, GenerationParams(**params))


@dataclass
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass
class ChatResponse:
    text: str
    finish_reason: str  # "stop" | "length"
    usage: Usage
    latency_ms: float
    model: str
    # How `GenerationParams.constraint` was kept: "native" (decoded under it), "validated" (checked
    # after decoding and retried once; the text may still fail if both tries did), "none" (no constraint).
    constraint_mode: str = "none"


@dataclass
class Delta:
    """One piece of a streamed answer; the last one has finish_reason and usage set."""

    text: str
    finish_reason: str | None = None
    usage: Usage | None = None


class Backend(Protocol):
    """A loaded model. Implementations: torch, llama.cpp, remote."""

    name: str
    context_length: int

    def count_tokens(self, messages: list[Message]) -> int:
        """Prompt tokens after the chat template (generation prompt included)."""
        ...

    def chat(self, request: ChatRequest) -> ChatResponse: ...

    def stream(self, request: ChatRequest) -> Iterator[Delta]:
        """Yields deltas; closing the iterator early stops generation."""
        ...

    def chat_batch(self, requests: list[ChatRequest]) -> list[ChatResponse]: ...
