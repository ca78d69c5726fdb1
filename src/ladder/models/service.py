"""Model calls as the rest of the platform makes them: resolve, load once, validate, generate, meter."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import replace

from ladder.errors import InvalidInput
from ladder.models.cache import ModelCache
from ladder.models.registry import BACKENDS, ModelSpec, get_model
from ladder.models.types import Backend, ChatRequest, ChatResponse, Delta, Usage
from ladder.models.validate import check_fits, check_request
from ladder.settings import get_settings
from ladder.store.db import DEFAULT_PROJECT
from ladder.store.usage import UsageRecord, record

_cache: ModelCache | None = None
_cache_lock = threading.Lock()


def model_cache() -> ModelCache:
    global _cache
    with _cache_lock:
        if _cache is None:
            _cache = ModelCache(get_settings().model_cache_bytes)
        return _cache


def pick_backend(spec: ModelSpec, backend: str | None) -> str:
    """The backend to serve `spec` with: the one asked for, or the spec's own."""
    if backend is None:
        return spec.backend
    if spec.backend == "remote" and backend != "remote":
        raise InvalidInput(f"{spec.name} is a remote model; it has no local {backend} backend", param="backend")
    if backend == "remote" and spec.backend != "remote":
        # A local model has no endpoint: "remote" would send its prompts to the SDK's default URL.
        raise InvalidInput(
            f"{spec.name} is a local model; backend 'remote' is only for models added with `ladder models add-remote`",
            param="backend",
        )
    if backend == "llamacpp" and not spec.is_gguf:
        raise InvalidInput(
            f"{spec.name} has no GGUF file for llama.cpp; export one with `ladder export`", param="backend"
        )
    if backend not in BACKENDS:
        raise InvalidInput(f"backend must be one of {', '.join(BACKENDS)}, not {backend!r}", param="backend")
    return backend


def open_backend(
    name: str, *, backend: str | None = None, project_id: str = DEFAULT_PROJECT, scoring: bool = False
) -> Backend:
    """The loaded backend for a model name (loaded on first use, then reused).

    `scoring`: the caller only scores labels (no decoding); a GGUF spec may name another serving
    copy for that with `meta["score_as"]` (see serving_copy), loaded as a backend of its own.
    """
    spec = get_model(name, project_id)
    kind = pick_backend(spec, backend)
    if scoring and kind == "llamacpp" and spec.meta.get("score_as"):
        spec = replace(spec, meta={**spec.meta, "serve_as": spec.meta["score_as"]})

    def load() -> tuple[Backend, int]:
        if kind == "llamacpp":
            from ladder.models.llamacpp_backend import LlamaCppBackend

            return LlamaCppBackend(spec), spec.size_bytes() or 0
        if kind == "remote":
            from ladder.models.remote_backend import RemoteBackend

            return RemoteBackend(spec), 0
        from ladder.models.torch_backend import TorchBackend

        b = TorchBackend.from_spec(spec, project_id=project_id)
        return b, b.memory_bytes()

    # Everything that decides what a loaded backend talks to is in the key: a remote model re-registered
    # with another endpoint, or another project's remote model of the same name, never gets this one.
    key = (
        spec.name,
        kind,
        spec.path,
        spec.adapter_path,
        spec.base_url,
        spec.remote_model,
        spec.api_key_env,
        str(spec.meta.get("server")),
        str(spec.meta.get("serve_as")),
    )
    return model_cache().get(key, load)


def _prepare(b: Backend, req: ChatRequest) -> None:
    check_request(req)
    check_fits(req, b.count_tokens(req.messages), b.context_length)


def _meter(name: str, resp: ChatResponse, project_id: str, source: str | None, remote: bool) -> None:
    record(
        UsageRecord(
            model=name,
            kind="chat",
            prompt_tokens=resp.usage.prompt_tokens,
            completion_tokens=resp.usage.completion_tokens,
            latency_ms=resp.latency_ms,
            project_id=project_id,
            source=source,
            remote=remote,
        )
    )


def chat(
    name: str,
    req: ChatRequest,
    *,
    backend: str | None = None,
    project_id: str = DEFAULT_PROJECT,
    source: str | None = "chat",
) -> ChatResponse:
    b = open_backend(name, backend=backend, project_id=project_id)
    _prepare(b, req)
    resp = b.chat(req)
    resp.model = name
    _meter(name, resp, project_id, source, remote=getattr(b, "remote", False))
    return resp


def chat_batch(
    name: str,
    reqs: list[ChatRequest],
    *,
    backend: str | None = None,
    project_id: str = DEFAULT_PROJECT,
    source: str | None = "batch",
) -> list[ChatResponse]:
    b = open_backend(name, backend=backend, project_id=project_id)
    for r in reqs:
        _prepare(b, r)
    out = b.chat_batch(reqs) if reqs else []
    for resp in out:
        resp.model = name
        _meter(name, resp, project_id, source, remote=getattr(b, "remote", False))
    return out


def answer_labels(
    name: str,
    reqs: list[ChatRequest],
    labels: list[str],
    *,
    backend: str | None = None,
    project_id: str = DEFAULT_PROJECT,
    source: str | None = "batch",
) -> list[tuple[ChatResponse, list[float]]]:
    """Label answers with every label's score in one pass, on a backend that has `answer_labels`."""
    b = open_backend(name, backend=backend, project_id=project_id, scoring=True)
    for r in reqs:
        _prepare(b, r)
    out = b.answer_labels(reqs, labels) if reqs else []
    for resp, _ in out:
        resp.model = name
        _meter(name, resp, project_id, source, remote=False)
    return out


def stream(
    name: str,
    req: ChatRequest,
    *,
    backend: str | None = None,
    project_id: str = DEFAULT_PROJECT,
    source: str | None = "chat",
) -> Iterator[Delta]:
    """Validates before the first delta; meters when the stream ends (also when closed early)."""
    b = open_backend(name, backend=backend, project_id=project_id)
    _prepare(b, req)
    return _metered_stream(name, b, req, project_id, source)


def _metered_stream(name: str, b: Backend, req: ChatRequest, project_id: str, source: str | None) -> Iterator[Delta]:
    t0 = time.perf_counter()
    usage = Usage(prompt_tokens=b.count_tokens(req.messages))
    gen = b.stream(req)
    try:
        for d in gen:
            if d.usage is not None:
                usage = d.usage
            elif d.text:
                # A stream closed early still pays for what it generated (about a token a delta).
                usage.completion_tokens += 1
            yield d
    finally:
        gen.close()
        resp = ChatResponse("", "stop", usage, (time.perf_counter() - t0) * 1000, name)
        _meter(name, resp, project_id, source, remote=getattr(b, "remote", False))
