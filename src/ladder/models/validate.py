"""Checks on a chat request made before any generation: messages, roles, max_tokens vs context."""

from __future__ import annotations

from ladder.errors import ContextLengthExceeded, InvalidInput
from ladder.models.types import ROLES, ChatRequest


def check_request(req: ChatRequest) -> None:
    """Raise InvalidInput naming the field for anything a backend must never see."""
    if not req.messages:
        raise InvalidInput("messages is empty: give at least one message", param="messages")
    for i, m in enumerate(req.messages):
        if m.role not in ROLES:
            raise InvalidInput(
                f"messages[{i}].role is {m.role!r}; use one of {', '.join(ROLES)}", param=f"messages[{i}].role"
            )
        if not isinstance(m.content, str):
            raise InvalidInput(f"messages[{i}].content must be a string", param=f"messages[{i}].content")
    p = req.params
    if not isinstance(p.max_tokens, int) or p.max_tokens < 1:
        raise InvalidInput("max_tokens must be a positive integer", param="max_tokens")
    if not 0.0 <= p.temperature <= 2.0:
        raise InvalidInput("temperature must be between 0 and 2", param="temperature")
    if not 0.0 < p.top_p <= 1.0:
        raise InvalidInput("top_p must be in (0, 1]", param="top_p")
    if len(p.stop) > 4:
        raise InvalidInput("at most 4 stop sequences", param="stop")


def check_fits(req: ChatRequest, prompt_tokens: int, context_length: int) -> None:
    """The prompt plus max_tokens must fit in the model's context window."""
    if req.params.max_tokens > context_length:
        raise ContextLengthExceeded(
            f"max_tokens {req.params.max_tokens} is beyond the model's context of {context_length} tokens",
            param="max_tokens",
        )
    if prompt_tokens + req.params.max_tokens > context_length:
        raise ContextLengthExceeded(
            f"the prompt has {prompt_tokens} tokens and max_tokens is {req.params.max_tokens}: together "
            f"{prompt_tokens + req.params.max_tokens}, beyond the model's context of {context_length}; "
            "shorten the messages or lower max_tokens"
        )
