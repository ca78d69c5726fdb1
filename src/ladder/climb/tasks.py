"""Task types and the zero-shot instruction built for each (label set for classification, keys for extraction)."""

from __future__ import annotations

import json
from collections import Counter

from ladder.errors import InvalidInput
from ladder.evals.testset import TestItem
from ladder.pipelines.parsers import ParserSpec

TASKS = ("classification", "extraction", "style", "knowledge", "open")
HEADLINE = {
    "classification": "accuracy",
    "extraction": "field_f1",
    "style": "rouge_l",
    "knowledge": "rouge_l",
    "open": "rouge_l",
}


def _json_obj(s: str) -> dict | None:
    try:
        v = json.loads(s)
    except (json.JSONDecodeError, ValueError):
        return None
    return v if isinstance(v, dict) else None


def infer_task(train: list[TestItem]) -> str:
    """Classification when answers are a small repeated set of short strings, extraction when they are JSON."""
    refs = [t.reference for t in train]
    if refs and all(_json_obj(r) is not None for r in refs):
        return "extraction"
    distinct = Counter(refs)
    if refs and len(distinct) <= max(2, min(100, len(refs) // 3)) and max(len(r.split()) for r in distinct) <= 6:
        return "classification"
    return "open"


def check_task(task: str) -> str:
    if task not in TASKS:
        raise InvalidInput(f"--task must be one of {', '.join(TASKS)}, not {task!r}", param="task")
    return task


def label_set(*sets: list[TestItem]) -> list[str]:
    return sorted({t.reference for s in sets for t in s})


def input_template_for(task: str) -> str:
    """Small models answer a bare message instead of labelling it; framing the input fixes much of that."""
    return {"classification": "Message: {input}\nCategory:", "extraction": "Text: {input}\nJSON:"}.get(task, "")


def instruction_for(task: str, train: list[TestItem], labels: list[str] | None = None) -> tuple[str, str, ParserSpec]:
    """(system prompt, output instruction, parser) for the zero-shot rung."""
    if task == "classification":
        labels = labels or label_set(train)
        listing = "\n".join(f"- {label}" for label in labels)
        return (
            "You classify customer messages into exactly one category. You never answer the message.",
            f"Categories:\n{listing}\n\nReply with the category name only, exactly as written above, and nothing else.",
            ParserSpec("label", labels=labels),
        )
    if task == "extraction":
        keys = sorted({k for t in train for k in (_json_obj(t.reference) or {})})
        schema = {"type": "object", "properties": {k: {} for k in keys}, "additionalProperties": False}
        return (
            "You extract structured fields from text.",
            f"Reply with one JSON object with exactly these keys: {', '.join(keys)}. Use null for a field "
            "the text does not give. Reply with the JSON only.",
            ParserSpec("json", schema=schema),
        )
    if task == "style":
        return (
            "You answer customer messages in the company's house style.",
            "Write the reply the way the company's support team writes.",
            ParserSpec("text"),
        )
    return ("You are a helpful assistant. Answer accurately and concisely.", "", ParserSpec("text"))


def max_tokens_for(task: str, train: list[TestItem], tokenizer_ratio: float = 1.6) -> int:
    """Room for the longest training answer (words x a tokens-per-word ratio), within sane bounds."""
    longest = max((len(t.reference.split()) for t in train), default=32)
    floor = {"classification": 8, "extraction": 48}.get(task, 64)
    return int(min(512, max(floor, longest * tokenizer_ratio + 4)))


def stratified(train: list[TestItem], k: int, labelled: bool) -> list[TestItem]:
    """k examples that cover as many labels as possible (round-robin over labels), deterministic."""
    if not labelled:
        return train[:k]
    by_label: dict[str, list[TestItem]] = {}
    for t in train:
        by_label.setdefault(t.reference, []).append(t)
    out, depth = [], 0
    while len(out) < k and any(len(v) > depth for v in by_label.values()):
        for label in sorted(by_label):
            if len(by_label[label]) > depth and len(out) < k:
                out.append(by_label[label][depth])
        depth += 1
    return out


def shot(t: TestItem) -> dict:
    return {"input": t.input, "output": t.reference}
