"""Chatbots (`bot:<name>` as a model name) served through the pipelines part, citations included."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from ladder.errors import InvalidInput
from ladder.models.types import ChatRequest, Delta

PREFIX = "bot:"


def is_bot(model: str) -> bool:
    return model.startswith(PREFIX)


def bot_names(project_id: str) -> list[str]:
    try:
        from ladder.pipelines import service
    except ImportError:
        return []
    return [p.name for p in service.list_bots(project_id=project_id)]


def _pipeline(model: str, project_id: str):
    from ladder.pipelines import service

    return service.get_bot(model[len(PREFIX) :], project_id=project_id)


def citations_of(result) -> list:
    from ladder.pipelines.pipeline import as_plain

    return [as_plain(c) for c in result.citations]


def _messages(req: ChatRequest) -> list[dict]:
    return [m.as_dict() for m in req.messages]


def chat(model: str, req: ChatRequest, project_id: str) -> dict:
    """One answer of the bot's pipeline: text, finish reason, usage and citations."""
    pipe = _pipeline(model, project_id)
    result = pipe.run(_messages(req), source="api")
    if result.error:
        raise InvalidInput(result.error, param="messages")
    return {
        "text": result.text,
        "finish_reason": result.finish_reason,
        "usage": result.usage,
        "citations": citations_of(result),
    }


def stream_factory(model: str, req: ChatRequest, project_id: str) -> Callable[[], Iterator]:
    """Resolves the bot now (404 before the response starts); the factory yields deltas and citations."""
    pipe = _pipeline(model, project_id)
    messages = _messages(req)

    def run() -> Iterator:
        from ladder.pipelines.pipeline import PipelineResult

        gen = pipe.stream(messages, source="api")
        try:
            for item in gen:
                if isinstance(item, PipelineResult):
                    yield {"citations": citations_of(item)}
                    yield Delta("", item.finish_reason, item.usage)
                else:
                    yield item
        finally:
            gen.close()

    return run
