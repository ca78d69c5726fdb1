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
from ladder.models.constrain_remote import correction, native_args, unwrap, violation
from ladder.models.registry import ModelSpec, check_key_env
from ladder.models.types import ChatRequest, ChatResponse, Delta, Message, Usage

DEFAULT_CONTEXT = 128_000
BATCH_CONCURRENCY = 4
log = logging.getLogger("ladder.models")
_CODE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")  # an upstream error code worth passing on (context_length_exceeded)
# What an endpoint answers when it does not take a request field (response_format, guided_*).
_UNSUPPORTED = (400, 422)


class RemoteBackend:
    remote = True

    def __init__(self, spec: ModelSpec, timeout: float = 120.0):
        self.name = spec.name
        self.endpoint = spec.base_url
        self.remote_model = spec.remote_model
        self.context_length = int(spec.meta.get("context_length", DEFAULT_CONTEXT))
        # Which constrained decoding the endpoint speaks: "vllm", "openai" (the default), "plain" (none).
        self.server = str(spec.meta.get("server", "openai"))
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
        c = request.params.constraint
        if c is None:
            return self._chat_once(request, {})
        native = native_args(c, self.server)
        if native is not None:
            try:
                r = self._chat_once(request, native)
            except BackendError as e:
                if e.upstream_status not in _UNSUPPORTED:
                    raise
                log.warning("remote model %s refused %s; validating its answers instead", self.name, sorted(native))
            else:
                r.text, r.constraint_mode = unwrap(c, r.text, native), "native"
                return r
        return self._chat_validated(request)

    def _chat_validated(self, request: ChatRequest) -> ChatResponse:
        """Free decoding, the answer checked against the constraint and asked for once more if it fails."""
        c = request.params.constraint
        first = self._chat_once(request, {})
        first.constraint_mode = "validated"
        why = violation(c, first.text.strip())
        if why is None:
            first.text = first.text.strip()
            return first
        retry = ChatRequest(
            [*request.messages, Message("assistant", first.text), Message("user", correction(c, why))], request.params
        )
        second = self._chat_once(retry, {})
        if violation(c, second.text.strip()) is None:
            second.text = second.text.strip()
        else:
            log.info("remote model %s: the retried answer still breaks its %s constraint", self.name, c.kind)
        second.constraint_mode = "validated"
        second.usage = Usage(
            first.usage.prompt_tokens + second.usage.prompt_tokens,
            first.usage.completion_tokens + second.usage.completion_tokens,
        )
        second.latency_ms += first.latency_ms
        return second

    def _chat_once(self, request: ChatRequest, extra: dict) -> ChatResponse:
        t0 = time.perf_counter()
        try:
            out = self.client.chat.completions.create(**self._args(request), **extra)
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
        c = request.params.constraint
        native = native_args(c, self.server) if c is not None else {}
        if native is None or (c is not None and c.kind == "choice" and "response_format" in native):
            # Validated (or unwrapped from {"label": ...}) as a whole, so sent as one piece.
            r = self.chat(request)
            yield Delta(r.text)
            yield Delta("", r.finish_reason, r.usage)
            return
        try:
            chunks = self.client.chat.completions.create(
                **self._args(request), **native, stream=True, stream_options={"include_usage": True}
            )
        except openai.OpenAIError as e:
            err = self._error(e)
            if not native or err.upstream_status not in _UNSUPPORTED:
                raise err from e
            r = self._chat_validated(request)
            yield Delta(r.text)
            yield Delta("", r.finish_reason, r.usage)
            return
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
