"""OpenAI-compatible /v1/models, /v1/chat/completions and /v1/embeddings."""

from __future__ import annotations

import base64
import dataclasses
import time

from fastapi import APIRouter, Depends, Request
from fastapi.responses import StreamingResponse

from ladder.errors import InvalidInput, NotFound
from ladder.ids import new_id
from ladder.models.text_stops import stop_list
from ladder.models.types import ChatRequest, GenerationParams, Message
from ladder.pipelines.output_contract import OutputContract, runs_locally
from ladder.pipelines.request_settings import ClientSettings
from ladder.server import bots_bridge, jsonformat
from ladder.server.deps import Principal, in_thread, principal, state
from ladder.server.schemas import ChatCompletionRequest, ChatMessageIn, EmbeddingRequest
from ladder.server.streaming import error_event, pump, sse

router = APIRouter(tags=["openai"])
MAX_EMBED_INPUTS = 2048


def _model_list(project_id: str) -> list[dict]:
    from ladder.models import registry

    out = []
    for spec in registry.list_models(project_id):
        owner = (
            "ladder"
            if spec.builtin
            else ("remote" if spec.backend == "remote" else ("project" if spec.project_id else "local"))
        )
        out.append({"id": spec.name, "object": "model", "created": 0, "owned_by": owner})
    for name in bots_bridge.bot_names(project_id):
        out.append({"id": f"bot:{name}", "object": "model", "created": 0, "owned_by": "chatbot"})
    return out


@router.get("/v1/models")
async def list_models(who: Principal = Depends(principal)) -> dict:
    return {"object": "list", "data": await in_thread(_model_list, who.project_id)}


@router.get("/v1/models/{model_id:path}")
async def get_model(model_id: str, who: Principal = Depends(principal)) -> dict:
    for m in await in_thread(_model_list, who.project_id):
        if m["id"] == model_id:
            return m
    raise NotFound(f"unknown model {model_id[:200]!r}", code="model_not_found", param="model")


def _content(m: ChatMessageIn) -> str:
    if m.content is None:
        return ""
    if isinstance(m.content, str):
        return m.content
    return "".join(part.text or "" for part in m.content)  # the schema admits text parts only


def _check_model(model: str, project_id: str) -> None:
    """404 for an unknown model (or bot) before the rest of the request is judged against it."""
    if bots_bridge.is_bot(model):
        from ladder.pipelines import service as bots

        bots.get_bot(model[len(bots_bridge.PREFIX) :], project_id=project_id)
    else:
        from ladder.models import registry

        registry.get_model(model, project_id)


def _to_request(body: ChatCompletionRequest, cap: int, default_max: int) -> ChatRequest:
    # Roles, content part types, n, tools and stop lengths are constrained by the schema itself.
    msgs = [Message("system" if m.role == "developer" else m.role, _content(m)) for m in body.messages]
    max_tokens = body.max_completion_tokens or body.max_tokens or default_max
    if max_tokens > cap:
        raise InvalidInput(
            f"max_tokens {max_tokens} is above this server's cap of {cap}",
            param="max_tokens",
            code="max_tokens_too_large",
        )
    stop = stop_list(body.stop)
    params = GenerationParams(
        max_tokens=max_tokens,
        temperature=body.temperature if body.temperature is not None else GenerationParams.temperature,
        top_p=body.top_p if body.top_p is not None else 1.0,
        seed=body.seed if body.seed is not None else 0,
        stop=stop,
    )
    return ChatRequest(msgs, params)


def _usage(u) -> dict:
    return {
        "prompt_tokens": u.prompt_tokens,
        "completion_tokens": u.completion_tokens,
        "total_tokens": u.prompt_tokens + u.completion_tokens,
    }


def _client_settings(body: ChatCompletionRequest) -> ClientSettings:
    """What the client set itself; a bot keeps its own value of everything else."""
    return ClientSettings(
        max_tokens=body.max_completion_tokens or body.max_tokens,
        temperature=body.temperature,
        top_p=body.top_p,
        seed=body.seed,
        stop=tuple(stop_list(body.stop)),
    )


def _complete(
    model: str,
    req: ChatRequest,
    client: ClientSettings,
    contract: OutputContract | None,
    project_id: str,
    counter,
) -> dict:
    """One blocking completion (bot or model), under the response_format's contract when one is asked."""
    from ladder.models import service

    with counter.generating():
        if bots_bridge.is_bot(model):
            return bots_bridge.chat(model, req, project_id, client=client, contract=contract)
        if contract is None:
            resp = service.chat(model, req, project_id=project_id)
            return {"text": resp.text, "finish_reason": resp.finish_reason, "usage": resp.usage}
        req = contract.apply(req)

        def attempt(i: int):
            params = dataclasses.replace(req.params, seed=(req.params.seed or 0) + i)
            return service.chat(model, ChatRequest(req.messages, params), project_id=project_id)

        resp, text = contract.enforce(attempt, local=runs_locally(model, None, project_id))
        return {"text": text, "finish_reason": resp.finish_reason, "usage": resp.usage}


def _chunk(cid: str, created: int, model: str, delta: dict, finish: str | None, usage_null: bool) -> dict:
    out = {
        "id": cid,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "system_fingerprint": None,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}],
    }
    if usage_null:
        out["usage"] = None
    return out


@router.post("/v1/chat/completions")
async def chat_completions(body: ChatCompletionRequest, request: Request, who: Principal = Depends(principal)):
    st = state(request)
    await in_thread(_check_model, body.model, who.project_id)
    req = _to_request(body, st.config.max_tokens_cap, st.config.default_max_tokens)
    client = _client_settings(body)
    # Checking a user's JSON Schema (its patterns compiled) is CPU work: off the event loop too.
    contract = await in_thread(jsonformat.contract_of, body.response_format)
    cid, created = new_id("chatcmpl"), int(time.time())
    if not body.stream:
        out = await in_thread(_complete, body.model, req, client, contract, who.project_id, st.counter)
        message = {"role": "assistant", "content": out["text"], "refusal": None}
        resp = {
            "id": cid,
            "object": "chat.completion",
            "created": created,
            "model": body.model,
            "system_fingerprint": None,
            "choices": [{"index": 0, "message": message, "finish_reason": out["finish_reason"], "logprobs": None}],
            "usage": _usage(out["usage"]),
        }
        if "citations" in out:
            resp["citations"] = out["citations"]
        if out.get("label_probs") is not None:
            # A label bot's probability of each label (an extension beside OpenAI's token `logprobs`).
            resp["choices"][0]["ladder_label_probs"] = out["label_probs"]
            resp["choices"][0]["ladder_abstained"] = out["abstained"]
        return resp
    include_usage = bool(body.stream_options and body.stream_options.include_usage)
    st.counter.open_stream(who.limit_key, st.config.max_streams_per_key)
    try:
        make_iter = await in_thread(_open_stream, body.model, req, client, contract, who.project_id, st.counter)
    except BaseException:
        st.counter.close_stream(who.limit_key)
        raise

    async def events():
        try:
            yield sse(_chunk(cid, created, body.model, {"role": "assistant", "content": ""}, None, include_usage))
            async for item in pump(make_iter, st.counter):
                if isinstance(item, Exception):
                    yield sse(error_event(item))
                    break
                if isinstance(item, dict):  # citations of a chatbot answer, sent once before the end
                    yield sse(
                        {
                            "id": cid,
                            "object": "chat.completion.chunk",
                            "created": created,
                            "model": body.model,
                            "choices": [],
                            "citations": item["citations"],
                            # a label bot's probabilities, as in a whole answer's choices[0]
                            **(
                                {"ladder_label_probs": item["label_probs"], "ladder_abstained": item["abstained"]}
                                if item.get("label_probs") is not None
                                else {}
                            ),
                        }
                    )
                    continue
                if item.text:
                    yield sse(_chunk(cid, created, body.model, {"content": item.text}, None, include_usage))
                if item.finish_reason:
                    yield sse(_chunk(cid, created, body.model, {}, item.finish_reason, include_usage))
                    if include_usage and item.usage is not None:
                        yield sse(
                            {
                                "id": cid,
                                "object": "chat.completion.chunk",
                                "created": created,
                                "model": body.model,
                                "system_fingerprint": None,
                                "choices": [],
                                "usage": _usage(item.usage),
                            }
                        )
            yield sse("[DONE]")
        finally:
            st.counter.close_stream(who.limit_key)

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def _open_stream(
    model: str,
    req: ChatRequest,
    client: ClientSettings,
    contract: OutputContract | None,
    project_id: str,
    counter,
):
    """Validate (and load) before the response starts, so errors get a proper status; returns a factory."""
    from ladder.models import service
    from ladder.models.types import Delta, Usage

    if contract is not None:
        # The whole answer is checked before any of it is sent: generate, then stream it at once,
        # with a bot's citations in the same chunk a streamed bot answer carries them in.
        out = _complete(model, req, client, contract, project_id, counter)
        u = out["usage"]
        items: list = [Delta(out["text"])]
        if "citations" in out:
            items.append({"citations": out["citations"]})
        items.append(Delta("", out["finish_reason"], Usage(u.prompt_tokens, u.completion_tokens)))
        return lambda: iter(items)
    if bots_bridge.is_bot(model):
        return bots_bridge.stream_factory(model, req, project_id, client=client)
    it = service.stream(model, req, project_id=project_id)
    return lambda: it


def _embed(body: EmbeddingRequest, project_id: str) -> dict:
    from ladder.knowledge.embedder import embed_and_meter, get_embedder
    from ladder.models.packaged import MINILM_NAME
    from ladder.settings import get_settings

    names = {get_settings().embedding_model, MINILM_NAME}
    if body.model not in names:
        raise NotFound(
            f"unknown embedding model {body.model[:200]!r}; available: {', '.join(sorted(names))}",
            code="model_not_found",
            param="model",
        )
    emb = get_embedder()
    texts = [body.input] if isinstance(body.input, str) else list(body.input)
    if not texts or len(texts) > MAX_EMBED_INPUTS:
        raise InvalidInput(f"input must hold 1 to {MAX_EMBED_INPUTS} strings", param="input")
    if any(not t for t in texts):
        raise InvalidInput("input strings must not be empty", param="input")
    if body.dimensions not in (None, emb.dim):
        raise InvalidInput(f"{emb.name} has {emb.dim} dimensions; dimensions cannot be changed", param="dimensions")
    tokens = sum(emb.count_tokens(texts))
    vecs = embed_and_meter(texts, project_id=project_id, source="api")
    data = []
    for i, v in enumerate(vecs):
        value = (
            base64.b64encode(v.astype("<f4").tobytes()).decode()
            if body.encoding_format == "base64"
            else [float(x) for x in v]
        )
        data.append({"object": "embedding", "index": i, "embedding": value})
    return {
        "object": "list",
        "data": data,
        "model": body.model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }


@router.post("/v1/embeddings")
async def embeddings(body: EmbeddingRequest, request: Request, who: Principal = Depends(principal)) -> dict:
    with state(request).counter.generating():
        return await in_thread(_embed, body, who.project_id)
