"""Locate the sample task shipped with ladder: a fictional help-centre and a general regression set."""

from __future__ import annotations

import json
from pathlib import Path

_ROOT = Path(__file__).resolve().parent


def helpdesk_dir() -> Path:
    """The Brightwave help-desk sample folder (docs/, categories.json, train/test/questions JSONL)."""
    return _ROOT / "helpdesk"


def helpdesk_docs() -> list[Path]:
    """The help-centre Markdown pages, sorted by file name (the knowledge base of the demo)."""
    return sorted((helpdesk_dir() / "docs").glob("*.md"))


def helpdesk_train() -> Path:
    """Training messages in chat JSONL: the user message, then the category label as the assistant reply."""
    return helpdesk_dir() / "train.jsonl"


def helpdesk_test() -> Path:
    """Held-out test messages in the same chat JSONL format as `helpdesk_train()`."""
    return helpdesk_dir() / "test.jsonl"


def helpdesk_categories() -> list[dict]:
    """The support taxonomy: a list of {"name": snake_case label, "description": one line}."""
    return json.loads((helpdesk_dir() / "categories.json").read_text(encoding="utf-8"))


def helpdesk_labels() -> list[str]:
    """The category labels alone, in taxonomy order."""
    return [c["name"] for c in helpdesk_categories()]


def helpdesk_questions() -> Path:
    """RAG questions as JSONL of {"question", "answer", "source"}; source is a file name in docs/."""
    return helpdesk_dir() / "questions.jsonl"


def regression_set() -> Path:
    """A small general-knowledge chat JSONL set for spotting catastrophic forgetting after fine-tuning."""
    return _ROOT / "regression" / "general.jsonl"
