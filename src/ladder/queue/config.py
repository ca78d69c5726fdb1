"""Queue settings from the environment: the server's embedded worker, lease length, polling interval."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class QueueConfig(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LADDER_", extra="ignore")

    # `ladder serve` runs one queue worker thread for evals and climbs, so one machine needs no other
    # command; LADDER_SERVE_WORKER=0 leaves them to `ladder worker` processes (the server only enqueues).
    serve_worker: bool = True
    # A running task's lease: renewed every heartbeat_s by its worker; a task whose lease is older
    # (its worker was killed, or its machine is gone) goes back to the queue.
    lease_s: float = Field(30.0, gt=0, alias="LADDER_QUEUE_LEASE_S")
    heartbeat_s: float = Field(1.0, gt=0, alias="LADDER_QUEUE_HEARTBEAT_S")

    @property
    def beat_s(self) -> float:
        """At least three beats per lease, so one slow write does not lose it."""
        return min(self.heartbeat_s, self.lease_s / 3)
