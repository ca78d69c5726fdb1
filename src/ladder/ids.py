"""Ids shaped like OpenAI's (`file-…`, `ftjob-…`) and our own (`kb-…`, `bot-…`)."""

from __future__ import annotations

import secrets
import string

_ALPHABET = string.ascii_letters + string.digits

PREFIXES = {
    "file", "ftjob", "ftevent", "ftckpt", "kb", "doc", "chunk", "bot", "eval", "climb",
    "proj", "key", "chatcmpl", "usage", "model",
}


def new_id(prefix: str, length: int = 24) -> str:
    """A random id like `ftjob-3kT9…`; `prefix` must be one of PREFIXES."""
    if prefix not in PREFIXES:
        raise ValueError(f"unknown id prefix {prefix!r}")
    return f"{prefix}-" + "".join(secrets.choice(_ALPHABET) for _ in range(length))
