"""Server limits from the environment (`LADDER_SERVER_*`): body sizes, token caps, rate limits."""

from __future__ import annotations

from pydantic_settings import BaseSettings, SettingsConfigDict


class ServerConfig(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LADDER_SERVER_", extra="ignore")

    max_body_bytes: int = 2 * 1024**2  # JSON requests
    max_upload_bytes: int = 64 * 1024**2  # multipart uploads (files, documents)
    max_tokens_cap: int = 4096  # largest max_tokens a request may ask for
    default_max_tokens: int = 256
    rate_limit_rpm: int = 600  # requests per minute per key (token bucket)
    max_streams_per_key: int = 4  # concurrent streaming responses per key
    max_messages: int = 512
    # Off loopback the server refuses to run without keys; on loopback it also
    # requires a key once any exists (the first `serve` creates one).
    require_keys: bool = True
