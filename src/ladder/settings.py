"""Settings from the environment (`LADDER_*`), with the data directory and the price table."""

from __future__ import annotations

import socket
from functools import lru_cache
from pathlib import Path

from platformdirs import user_data_dir
from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Price(BaseModel):
    """Prices in US dollars. Local models carry a compute price so rungs compare on cost."""

    input_per_1k: float = 0.0
    output_per_1k: float = 0.0
    per_embedded_chunk: float = 0.0
    trained_per_1k: float = 0.0


# Local compute is not free: these defaults approximate a small CPU/GPU instance's
# cost spread over the tokens it processes, so that a prompted large remote model and
# a small tuned local one can be compared per 1,000 requests. Override per model with
# LADDER_PRICES='{"model-name": {"input_per_1k": ..., ...}}'.
DEFAULT_LOCAL_PRICE = Price(
    input_per_1k=0.00002, output_per_1k=0.00008, per_embedded_chunk=0.000002, trained_per_1k=0.0004
)
DEFAULT_REMOTE_PRICE = Price(input_per_1k=0.00015, output_per_1k=0.0006, trained_per_1k=0.003)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LADDER_", extra="ignore", populate_by_name=True)

    home: Path = Field(default_factory=lambda: Path(user_data_dir("ladder", appauthor=False)))
    # Unset: SQLite at <home>/ladder.db. postgresql://…: the PostgreSQL (with pgvector) that every
    # `ladder serve` and `ladder worker` of a deployment shares (docs/deploy.md).
    database_url: str | None = None
    # Unset: uploaded files under <home>/blobs. An fsspec URL (s3://bucket/prefix, file:///mnt/shared/ladder):
    # the blob store every machine of a deployment reads and writes: uploads, fine-tune data, checkpoints,
    # tuned adapters and reports (store/blob_dirs.py, tuning/remote.py).
    blob_url: str | None = None
    # Where fine-tuning job dirs, climb work dirs, reports and exports go; defaults to <home>. Without
    # LADDER_BLOB_URL, several machines on one database point it at one shared mount (NFS, EFS), so a job
    # resumed on another worker finds its checkpoints and every server every tuned model; with it, only
    # `ladder export` output must be shared (docs/deploy.md).
    shared_root: Path | None = Field(default=None, alias="LADDER_SHARED_DIR")
    default_model: str = "smollm2-135m-instruct"
    embedding_model: str = "all-minilm-l6-v2"
    prices: dict[str, Price] = Field(default_factory=dict)
    local_price: Price = DEFAULT_LOCAL_PRICE
    remote_price: Price = DEFAULT_REMOTE_PRICE
    # Bytes of model weights kept loaded per process before the least recently used is dropped.
    model_cache_bytes: int = 4 * 1024**3
    # Converted models and other derived, re-creatable files; defaults to <home>/cache. Several data
    # dirs (tests, staging) can share one to skip converting the same GGUF again.
    cache_root: Path | None = Field(default=None, alias="LADDER_CACHE_DIR")
    # This machine's name in worker leases (default: the hostname). Leases of another machine's workers
    # are judged by their expiry only; containers that share a hostname need distinct names here.
    host_name: str | None = None
    device: str = "auto"  # auto | cpu | cuda
    threads: int = 0  # 0: let the backend choose
    # Variables a remote model may name with --api-key-env besides *_API_KEY / *_TOKEN / *_KEY ones,
    # comma-separated; the only ones a project's own remote model may name (see models/registry.py).
    remote_key_envs: str = ""
    # User data files (datasets, test sets, uploads): checked by size before any byte is read, the
    # same bound as the server's upload limit so the CLI and the API refuse the same files.
    max_file_bytes: int = 64 * 1024**2
    # One JSON Lines line; a chat example with a long document fits, a 60 MB single line does not.
    max_json_line_bytes: int = 8 * 1024**2
    # Embedding is the costly part of a KB upload (about 25 chunks/s on 2 CPU threads, see
    # docs/benchmarks.md): one upload may make at most this many chunks (about 80 s of CPU) ...
    max_chunks_per_document: int = 2000
    # ... and one project may embed at most this many chunks in any 24 hours (usage ledger).
    embed_chunks_per_day: int = 20_000
    # A KB upload over the API larger than this many bytes is queued as an `ingest` task (202 with the
    # task) rather than embedded while the request waits; 256 KiB of Markdown is about 330 chunks,
    # some 13 s of CPU here. The form field `wait` forces either way.
    kb_queue_bytes: int = Field(256 * 1024, ge=0)

    @property
    def db_path(self) -> Path:
        return self.home / "ladder.db"

    @property
    def blobs_dir(self) -> Path:
        return self.home / "blobs"

    @property
    def shared_dir(self) -> Path:
        return self.shared_root or self.home

    @property
    def cache_dir(self) -> Path:
        return self.cache_root or self.home / "cache"

    def price_for(self, model: str, *, remote: bool = False) -> Price:
        if model in self.prices:
            return self.prices[model]
        return self.remote_price if remote else self.local_price


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()


def reset_settings() -> None:
    """Forget cached settings (tests change LADDER_HOME between cases)."""
    get_settings.cache_clear()


def host_name() -> str:
    """This machine's name in worker leases: LADDER_HOST_NAME, else the hostname."""
    return get_settings().host_name or socket.gethostname()
