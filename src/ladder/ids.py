"""Ids shaped like OpenAI's (`file-…`, `ftjob-…`) and our own (`kb-…`, `bot-…`), and their strict grammar."""

from __future__ import annotations

import re
import secrets
import string

from ladder.errors import InvalidInput

_ALPHABET = string.ascii_letters + string.digits
ID_LENGTH = 24

PREFIXES = {
    "file",
    "ftjob",
    "ftevent",
    "ftckpt",
    "kb",
    "doc",
    "chunk",
    "bot",
    "eval",
    "climb",
    "ingest",
    "rung",
    "proj",
    "key",
    "chatcmpl",
    "usage",
    "model",
}
# Exactly what new_id writes: the prefix, a dash, ID_LENGTH ASCII letters or digits. Nothing that
# could be read as a path (no `/`, `.`, `~`, NUL) fits, so a value that passes is never a path.
_GRAMMAR = re.compile(rf"(?P<prefix>[a-z]+)-[A-Za-z0-9]{{{ID_LENGTH}}}")


def new_id(prefix: str, length: int = ID_LENGTH) -> str:
    """A random id like `ftjob-3kT9…`; `prefix` must be one of PREFIXES."""
    if prefix not in PREFIXES:
        raise ValueError(f"unknown id prefix {prefix!r}")
    return f"{prefix}-" + "".join(secrets.choice(_ALPHABET) for _ in range(length))


def id_pattern(prefix: str) -> str:
    """The grammar of `prefix` ids as a regular expression, for API schemas."""
    return rf"^{prefix}-[A-Za-z0-9]{{{ID_LENGTH}}}$"


def is_id(value: object, prefix: str) -> bool:
    """True when `value` is shaped exactly like an id new_id(prefix) makes."""
    if not isinstance(value, str):
        return False
    m = _GRAMMAR.fullmatch(value)
    return m is not None and m.group("prefix") == prefix


def check_id(value: object, prefix: str, param: str) -> str:
    """`value` when it is a well-formed `prefix-…` id, else InvalidInput saying what an id looks like."""
    if is_id(value, prefix):
        return value  # type: ignore[return-value]
    shown = repr(value[:60] + ("…" if len(value) > 60 else "")) if isinstance(value, str) else type(value).__name__
    raise InvalidInput(
        f"{param}: {shown} is not a {prefix} id; give the id ladder returned ({prefix}- and "
        f"{ID_LENGTH} letters or digits), never a path",
        param=param,
        code=f"invalid_{prefix}_id",
    )
