"""Chatbots (`bot:<name>` as a model name) served through the pipelines part, citations included."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from ladder.errors import InvalidInput
from ladder.models.types import ChatRequest, Delta
from ladder.pipelines.output_contract import OutputContract, runs_locally
from ladder.pipelines.request_settings import ClientSettings

PREFIX = "bot:"


def is_bot(model: str) -> bool:
    return model.startswith(PREFIX)


def bot_names(project_id: str) -> list[str]:
    try:
        from ladder.pipelines import service
    except ImportError:
        return []
    return [p.name for p in service.list_bots(project_id=project_id)]


def _pipeline(model: str, project_id: str, client: ClientSettings | None = None, contract=None):
    """The bot's pipeline for this request: the client's settings within its rules, and its response_format."""
    from ladder.pipelines import service
    from ladder.pipelines.pipeline import Pipeline

    pipe = service.get_bot(model[len(PREFIX) :], project_id=project_id)
    config = client.apply(pipe.config) if client is not None else pipe.config
    return Pipeline(
        config, name=pipe.name, version=pipe.version, bot_id=pipe.id, project_id=pipe.project_id, contract=contract
    )


def citations_of(result) -> list:
    from ladder.pipelines.pipeline import as_plain

    return [as_plain(c) for c in result.citations]


def _messages(req: ChatRequest) -> list[dict]:
    return [m.as_dict() for m in req.messages]


def chat(
    model: str,
    req: ChatRequest,
    project_id: str,
    *,
    client: ClientSettings | None = None,
    contract: OutputContract | None = None,
) -> dict:
    """One answer of the bot's pipeline: text, finish reason, usage and citations (under `contract`, checked)."""
    pipe = _pipeline(model, project_id, client, contract)
    messages = _messages(req)

    def attempt(i: int):
        # A retry (only for a backend that cannot constrain) samples with the next seed, as plain models do.
        p = pipe if i == 0 else _reseeded(pipe, i)
        result = p.run(messages, source="api")
        if result.error:
            raise InvalidInput(result.error, param="messages")
        return result

    if contract is None:
        result, text = attempt(0), None
    else:
        local = runs_locally(pipe.config.model, pipe.config.backend, pipe.project_id)
        result, text = contract.enforce(attempt, local=local)
    return {
        "text": result.text if text is None else text,
        "finish_reason": result.finish_reason,
        "usage": result.usage,
        "citations": citations_of(result),
        "label_probs": result.label_probs,  # label bots only; None elsewhere
        "abstained": result.abstained,
    }


def _reseeded(pipe, attempt: int):
    from ladder.pipelines.pipeline import Pipeline

    config = pipe.config.replace(seed=(pipe.config.seed or 0) + attempt)
    return Pipeline(
        config, name=pipe.name, version=pipe.version, bot_id=pipe.id, project_id=pipe.project_id, contract=pipe.contract
    )


def stream_factory(
    model: str, req: ChatRequest, project_id: str, *, client: ClientSettings | None = None
) -> Callable[[], Iterator]:
    """Resolves the bot now (404 before the response starts); the factory yields deltas and citations."""
    pipe = _pipeline(model, project_id, client)
    messages = _messages(req)

    def run() -> Iterator:
        from ladder.pipelines.pipeline import PipelineResult

        gen = pipe.stream(messages, source="api")
        try:
            for item in gen:
                if isinstance(item, PipelineResult):
                    probs = {"label_probs": item.label_probs, "abstained": item.abstained}
                    yield {"citations": citations_of(item)} | probs
                    yield Delta("", item.finish_reason, item.usage)
                else:
                    yield item
        finally:
            gen.close()

    return run
