"""The remote backend: any OpenAI-compatible endpoint (OpenAI, vLLM, Ollama, another ladder) via the SDK."""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import openai

from ladder.errors import BackendError, InvalidInput
from ladder.models.registry import ModelSpec, check_key_env
from ladder.models.types import ChatRequest, ChatResponse, Delta, Message, Usage

DEFAULT_CONTEXT = 128_000
BATCH_CONCURRENCY = 4
log = logging.getLogger("ladder.models")
_CODE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")  # an upstream error code worth passing on (context_length_exceeded)


class RemoteBackend:
    remote = True

    def __init__(self, spec: ModelSpec, timeout: float = 120.0):
        self.name = spec.name
        self.endpoint = spec.base_url
        self.remote_model = spec.remote_model
        self.context_length = int(spec.meta.get("context_length", DEFAULT_CONTEXT))
        key = "not-needed"
        if spec.api_key_env:
            # Checked again here, not only at registration: a row written before the rule existed, or by
            # hand, must not send HOME or a server secret to the endpoint either.
            check_key_env(spec.api_key_env, project_id=spec.project_id)
            key = os.environ.get(spec.api_key_env, "")
            if not key:
                raise InvalidInput(
                    f"model {spec.name}: the environment variable {spec.api_key_env} that should "
                    "hold its API key is not set on the server"
                )
        self.client = openai.OpenAI(base_url=spec.base_url, api_key=key, timeout=timeout, max_retries=1)

    def count_tokens(self, messages: list[Message]) -> int:
        # The remote tokenizer is unknown here; about 4 characters a token is the usual estimate.
        return sum(len(m.content) // 4 + 4 for m in messages) + 2

    def _args(self, request: ChatRequest) -> dict:
        p = request.params
        args = {
            "model": self.remote_model,
            "messages": [m.as_dict() for m in request.messages],
            "max_tokens": p.max_tokens,
            "temperature": p.temperature,
            "top_p": p.top_p,
        }
        if p.seed is not None:
            args["seed"] = p.seed
        if p.stop:
            args["stop"] = list(p.stop)
        return args

    def _error(self, e: Exception) -> BackendError:
        """What the caller is told: the model and the kind of failure, never the endpoint.

        Callers of every project use a shared remote model, and its URL (an internal host, a key in
        a query string) is the operator's; the full detail goes to the server log instead.
        """
        status = e.status_code if isinstance(e, openai.APIStatusError) else None
        if status is not None:
            code = getattr(e, "code", None)
            kind = f"its endpoint answered HTTP {status}" + (
                f" ({code})" if isinstance(code, str) and _CODE.match(code) else ""
            )
        elif isinstance(e, openai.APITimeoutError):
            kind = "its endpoint did not answer in time"
        elif isinstance(e, openai.APIConnectionError):
            kind = "its endpoint could not be reached"
        else:
            kind = f"the call failed ({type(e).__name__})"
        log.warning(
            "remote model %s (%s at %s): %s: %s",
            self.name,
            self.remote_model,
            self.endpoint,
            kind,
            getattr(e, "message", None) or e.__cause__ or e,
        )
        err = BackendError(f"remote model {self.name}: {kind} (details in the server log)")
        err.upstream_status = status
        return err

    def chat(self, request: ChatRequest) -> ChatResponse:
        t0 = time.perf_counter()
        try:
            out = self.client.chat.completions.create(**self._args(request))
        except openai.OpenAIError as e:
            raise self._error(e) from e
        choice = out.choices[0]
        u = out.usage
        usage = Usage(u.prompt_tokens, u.completion_tokens) if u else Usage(self.count_tokens(request.messages), 0)
        return ChatResponse(
            choice.message.content or "",
            "length" if choice.finish_reason == "length" else "stop",
            usage,
            (time.perf_counter() - t0) * 1000,
            self.name,
        )

    def chat_batch(self, requests: list[ChatRequest]) -> list[ChatResponse]:
        with ThreadPoolExecutor(BATCH_CONCURRENCY) as pool:
            return list(pool.map(self.chat, requests))

    def stream(self, request: ChatRequest) -> Iterator[Delta]:
        try:
            chunks = self.client.chat.completions.create(
                **self._args(request), stream=True, stream_options={"include_usage": True}
            )
        except openai.OpenAIError as e:
            raise self._error(e) from e
        finish, usage, n = "stop", None, 0
        try:
            for chunk in chunks:
                if chunk.usage:
                    usage = Usage(chunk.usage.prompt_tokens, chunk.usage.completion_tokens)
                for choice in chunk.choices:
                    if choice.delta and choice.delta.content:
                        n += 1
                        yield Delta(choice.delta.content)
                    if choice.finish_reason:
                        finish = "length" if choice.finish_reason == "length" else "stop"
        except openai.OpenAIError as e:
            raise self._error(e) from e
        finally:
            chunks.close()
        yield Delta("", finish, usage or Usage(self.count_tokens(request.messages), n))
