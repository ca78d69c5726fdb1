"""Bots: named pipelines; every change is a new version and old versions stay readable (rows in pipelines/store.py)."""

from __future__ import annotations

import re

from ladder.errors import InvalidInput, NotFound
from ladder.ids import new_id
from ladder.models.registry import get_model
from ladder.models.service import pick_backend
from ladder.pipelines import store
from ladder.pipelines.config import PipelineConfig
from ladder.pipelines.pipeline import Pipeline
from ladder.pipelines.store import BotRow
from ladder.store.db import DEFAULT_PROJECT

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"  # also the API schema's pattern
_NAME = re.compile(NAME_PATTERN)


def _config(config: PipelineConfig | dict) -> PipelineConfig:
    return config if isinstance(config, PipelineConfig) else PipelineConfig.from_dict(config)


def _row_to_pipeline(row: BotRow) -> Pipeline:
    try:
        cfg = PipelineConfig.from_dict(row.config)
    except InvalidInput as e:
        # Saved before a check that now refuses it (e.g. max_tokens -5): say which bot and how to mend it.
        raise InvalidInput(
            f"bot {row.name!r} version {row.version} has a setting this version of ladder refuses: "
            f"{e.message}; save a corrected version with `ladder bots edit {row.name} ...` or "
            f"POST /api/bots/{row.name}/versions",
            param=e.param,
        ) from e
    return Pipeline(cfg, name=row.name, version=row.version, bot_id=row.id, project_id=row.project_id)


def _check_model(cfg: PipelineConfig, project_id: str) -> None:
    """The model exists for this project and can be served by the backend the bot names."""
    pick_backend(get_model(cfg.model, project_id), cfg.backend)


def create_bot(name: str, config: PipelineConfig | dict, *, project_id: str = DEFAULT_PROJECT) -> Pipeline:
    """Store a new bot (version 1). The model must exist; the name must be free."""
    if not _NAME.match(name or ""):
        raise InvalidInput(f"bot name {name!r}: use 1-64 letters, digits, '.', '_' or '-'", param="name")
    cfg = _config(config)
    _check_model(cfg, project_id)
    bot_id = new_id("bot")
    store.insert_first(bot_id, project_id, name, cfg.as_dict())
    return Pipeline(cfg, name=name, version=1, bot_id=bot_id, project_id=project_id)


def get_bot(name: str, version: int | None = None, *, project_id: str = DEFAULT_PROJECT) -> Pipeline:
    """A bot by name (or `bot-…` id), latest version unless one is named; `name@3` also picks version 3."""
    return _row_to_pipeline(_latest_row(name, project_id, version))


def _latest_row(name: str, project_id: str, version: int | None = None) -> BotRow:
    """The stored row of a bot's version (the latest unless one is named), or NotFound."""
    if version is None and "@" in name:
        name, _, v = name.partition("@")
        digits = v.lstrip("v")
        if digits.isascii() and digits.isdigit():  # "²" is a digit to isdigit() but not to int()
            version = int(digits) if len(digits) <= 19 else 2**63  # no 5,000-digit int(); refused below
    if version is not None and not 0 < version < 2**63:  # SQLite's INTEGER range; beyond it sqlite3 overflows
        raise InvalidInput(f"bot version {version} is out of range (1 to {2**63 - 1})", param="version")
    row = store.find(project_id, name, version)
    if row is None:
        known = ", ".join(store.names(project_id)) or "none yet"
        what = f"bot {name!r}" + (f" version {version}" if version is not None else "")
        raise NotFound(f"no {what}; bots: {known}", code="bot_not_found", param="bot")
    return row


def edit_bot(name: str, changes: dict, *, project_id: str = DEFAULT_PROJECT) -> Pipeline:
    """Apply changes to the latest version and store the result as the next version."""
    if not changes:
        return get_bot(name, project_id=project_id)
    # From the stored settings, not a loaded pipeline, so an edit can mend a version that no longer loads.
    current = _latest_row(name, project_id)
    cfg = PipelineConfig.from_dict({**current.config, **changes})
    _check_model(cfg, project_id)
    version = store.insert_next(current, cfg.as_dict())
    return Pipeline(cfg, name=current.name, version=version, bot_id=current.id, project_id=project_id)


def list_bots(*, project_id: str = DEFAULT_PROJECT) -> list[Pipeline]:
    """The latest version of every bot, by name."""
    return [_row_to_pipeline(r) for r in store.latest_of_each(project_id)]


def bot_versions(name: str, *, project_id: str = DEFAULT_PROJECT) -> list[Pipeline]:
    rows = store.versions(project_id, name)
    if not rows:
        get_bot(name, project_id=project_id)
    return [_row_to_pipeline(r) for r in rows]


def delete_bot(name: str, *, project_id: str = DEFAULT_PROJECT) -> None:
    if not store.delete(project_id, name):
        get_bot(name, project_id=project_id)
