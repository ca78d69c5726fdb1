"""Request limits: body size (ASGI middleware), per-key rate limits and streams, the in-flight counter."""

from __future__ import annotations

import json
import math
import threading
import time
from contextlib import contextmanager

from ladder.server.errors import ApiError


class BodyLimitMiddleware:
    """Answers 413 before reading more than the limit (Content-Length or counted while streaming)."""

    def __init__(self, app, *, max_body: int, max_upload: int):
        self.app, self.max_body, self.max_upload = app, max_body, max_upload

    def _limit(self, scope) -> int:
        path = scope.get("path", "").rstrip("/")
        upload = path == "/v1/files" or (path.startswith("/api/kbs/") and path.endswith("/documents"))
        return self.max_upload if upload else self.max_body

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit = self._limit(scope)
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    too_big = int(value) > limit
                except ValueError:
                    too_big = False
                if too_big:
                    return await _reject(send, limit)
        seen = 0
        started = False

        async def counted_receive():
            nonlocal seen
            msg = await receive()
            if msg["type"] == "http.request":
                seen += len(msg.get("body", b""))
                if seen > limit:
                    raise _TooLarge()
            return msg

        async def tracked_send(msg):
            nonlocal started
            if msg["type"] == "http.response.start":
                started = True
            await send(msg)

        try:
            await self.app(scope, counted_receive, tracked_send)
        except _TooLarge:
            if not started:
                await _reject(send, limit)


class _TooLarge(Exception):
    pass


async def _reject(send, limit: int) -> None:
    body = json.dumps(
        {
            "error": {
                "message": f"request body is larger than the limit of {limit} bytes",
                "type": "invalid_request_error",
                "param": None,
                "code": "request_too_large",
            }
        }
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class RateLimiter:
    """A token bucket per key: `rpm` requests a minute, bursts up to `rpm`."""

    def __init__(self, rpm: int):
        self.rpm = max(1, rpm)
        self.rate = self.rpm / 60.0
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def check(self, key: str) -> dict[str, str]:
        """Take one token or raise a 429 ApiError; returns the x-ratelimit-* headers."""
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(key, (float(self.rpm), now))
            tokens = min(float(self.rpm), tokens + (now - last) * self.rate)
            if tokens < 1.0:
                wait = (1.0 - tokens) / self.rate
                self._buckets[key] = (tokens, now)
                headers = {
                    "Retry-After": str(max(1, math.ceil(wait))),
                    "x-ratelimit-limit-requests": str(self.rpm),
                    "x-ratelimit-remaining-requests": "0",
                    "x-ratelimit-reset-requests": f"{wait:.2f}s",
                }
                raise ApiError(
                    429,
                    f"rate limit of {self.rpm} requests per minute reached; retry after {headers['Retry-After']} s",
                    code="rate_limit_exceeded",
                    headers=headers,
                )
            tokens -= 1.0
            self._buckets[key] = (tokens, now)
            reset = (self.rpm - tokens) / self.rate
        return {
            "x-ratelimit-limit-requests": str(self.rpm),
            "x-ratelimit-remaining-requests": str(int(tokens)),
            "x-ratelimit-reset-requests": f"{reset:.2f}s",
        }


class Counter:
    """Thread-safe counts: streams per key and model calls in flight."""

    def __init__(self):
        self._lock = threading.Lock()
        self.in_flight = 0
        self._streams: dict[str, int] = {}

    @contextmanager
    def generating(self):
        with self._lock:
            self.in_flight += 1
        try:
            yield
        finally:
            with self._lock:
                self.in_flight -= 1

    def open_stream(self, key: str, limit: int) -> None:
        with self._lock:
            n = self._streams.get(key, 0)
            if n >= limit:
                raise ApiError(
                    429,
                    f"at most {limit} concurrent streams per API key; wait for one to finish",
                    code="too_many_streams",
                    headers={"Retry-After": "1"},
                )
            self._streams[key] = n + 1

    def close_stream(self, key: str) -> None:
        with self._lock:
            self._streams[key] = max(0, self._streams.get(key, 1) - 1)
