"""Task types and the zero-shot instruction built for each (label set for classification, keys for extraction)."""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from ladder.errors import InvalidInput
from ladder.evals.testset import TestItem
from ladder.pipelines.config import PipelineConfig
from ladder.pipelines.parsers import ParserSpec
from ladder.store.db import DEFAULT_PROJECT

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


def zero_shot_config(
    task: str,
    train: list[TestItem],
    model: str,
    labels: list[str] | None = None,
    project_id: str = DEFAULT_PROJECT,
    max_tokens: int | None = None,
) -> PipelineConfig:
    """The zero-shot rung's pipeline: the task's instruction, input framing, parser and answer room.

    Without `max_tokens` the room is sized by the model's tokenizer from the training answers.
    """
    system, instruction, parser = instruction_for(task, train, labels)
    if max_tokens is None:
        max_tokens = max_tokens_for(task, train, token_counter(model, project_id))
    return PipelineConfig(
        model=model,
        system_prompt=system,
        output_instruction=instruction,
        parser=parser,
        input_template=input_template_for(task),
        max_tokens=max_tokens,
    )


TokenCounter = Callable[[str], int]
MAX_ANSWER_TOKENS = 512  # a rung's prompt (instruction, shots, passages) must still fit the context beside it
MARGIN = 1.15  # answers longer than the longest training one, and constrained JSON's own spacing


def max_tokens_for(task: str, train: list[TestItem], count_tokens: TokenCounter) -> int:
    """Room for the longest training answer as the model's tokenizer counts it, plus a margin.

    Counting words undercounts answers dense in tokens (upper-case codes, addresses, numbers, JSON
    punctuation): they were cut mid-answer and scored as format failures.
    """
    longest = max((count_tokens(t.reference) for t in train), default=32)
    floor = {"classification": 8, "extraction": 48}.get(task, 64)
    return int(min(MAX_ANSWER_TOKENS, max(floor, math.ceil(longest * MARGIN) + 4)))


def token_counter(model: str, project_id: str = DEFAULT_PROJECT) -> TokenCounter:
    """How many tokens `model` spends on a text, read from its tokenizer alone (no weights are loaded).

    A GGUF file gives llama.cpp's vocabulary (`vocab_only`), a Hugging Face directory its tokenizer
    files, a tuned model its adapter's or base's. A remote model's tokenizer is not ours to read:
    its count is taken as one token per two UTF-8 bytes, about what dense text (codes, numbers)
    costs, where prose costs one per three or four.
    """
    from ladder.models.registry import get_model

    spec = get_model(model, project_id)
    while spec.is_tuned and not spec.is_gguf:
        if spec.adapter_path and (Path(spec.adapter_path) / "tokenizer_config.json").exists():
            return _hf_counter(Path(spec.adapter_path))
        spec = get_model(spec.base_model, project_id)
    if spec.backend == "remote" or not spec.path:
        return lambda text: math.ceil(len(text.encode()) / 2)
    if spec.is_gguf:
        from llama_cpp import Llama
        from llama_cpp._utils import suppress_stdout_stderr

        # llama.cpp warns on stderr about the context of a vocabulary-only load whatever `verbose` says.
        with suppress_stdout_stderr(disable=False):
            vocab = Llama(model_path=spec.path, vocab_only=True, verbose=False)
        return lambda text: len(vocab.tokenize(text.encode(), add_bos=False, special=False))
    return _hf_counter(Path(spec.path))


def _hf_counter(path: Path) -> TokenCounter:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(path)
    return lambda text: len(tok.encode(text, add_special_tokens=False))


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
