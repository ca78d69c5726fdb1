"""The remote backend: any OpenAI-compatible endpoint (OpenAI, vLLM, Ollama, another ladder) via the SDK."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import openai

from ladder.errors import BackendError, InvalidInput
from ladder.models.registry import ModelSpec
from ladder.models.types import ChatRequest, ChatResponse, Delta, Message, Usage

DEFAULT_CONTEXT = 128_000
BATCH_CONCURRENCY = 4


class RemoteBackend:
    remote = True

    def __init__(self, spec: ModelSpec, timeout: float = 120.0):
        self.name = spec.name
        self.endpoint = spec.base_url
        self.remote_model = spec.remote_model
        self.context_length = int(spec.meta.get("context_length", DEFAULT_CONTEXT))
        key = "not-needed"
        if spec.api_key_env:
            key = os.environ.get(spec.api_key_env, "")
            if not key:
                raise InvalidInput(f"model {spec.name}: the environment variable {spec.api_key_env} that should "
                                   f"hold the API key for {spec.base_url} is not set")
        self.client = openai.OpenAI(base_url=spec.base_url, api_key=key, timeout=timeout, max_retries=1)

    def count_tokens(self, messages: list[Message]) -> int:
        # The remote tokenizer is unknown here; about 4 characters a token is the usual estimate.
        return sum(len(m.content) // 4 + 4 for m in messages) + 2

    def _args(self, request: ChatRequest) -> dict:
        p = request.params
        args = {"model": self.remote_model, "messages": [m.as_dict() for m in request.messages],
                "max_tokens": p.max_tokens, "temperature": p.temperature, "top_p": p.top_p}
        if p.seed is not None:
            args["seed"] = p.seed
        if p.stop:
            args["stop"] = list(p.stop)
        return args

    def _error(self, e: Exception) -> BackendError:
        if isinstance(e, openai.APIStatusError):
            detail = getattr(e, "message", str(e))
            err = BackendError(f"{self.endpoint} answered HTTP {e.status_code} for model {self.remote_model}: "
                               f"{detail}")
            err.upstream_status = e.status_code
            return err
        if isinstance(e, openai.APITimeoutError):
            return BackendError(f"{self.endpoint} did not answer in time (model {self.remote_model})")
        if isinstance(e, openai.APIConnectionError):
            return BackendError(f"could not reach {self.endpoint} (model {self.remote_model}): {e.__cause__ or e}")
        return BackendError(f"{self.endpoint}: {e}")

    def chat(self, request: ChatRequest) -> ChatResponse:
        t0 = time.perf_counter()
        try:
            out = self.client.chat.completions.create(**self._args(request))
        except openai.OpenAIError as e:
            raise self._error(e) from e
        choice = out.choices[0]
        u = out.usage
        usage = Usage(u.prompt_tokens, u.completion_tokens) if u else Usage(self.count_tokens(request.messages), 0)
        return ChatResponse(choice.message.content or "", "length" if choice.finish_reason == "length" else "stop",
                            usage, (time.perf_counter() - t0) * 1000, self.name)

    def chat_batch(self, requests: list[ChatRequest]) -> list[ChatResponse]:
        with ThreadPoolExecutor(BATCH_CONCURRENCY) as pool:
            return list(pool.map(self.chat, requests))

    def stream(self, request: ChatRequest) -> Iterator[Delta]:
        try:
            chunks = self.client.chat.completions.create(**self._args(request), stream=True,
                                                         stream_options={"include_usage": True})
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
