"""The task metric of a tuning job: which task it is, and accuracy / field F1 of the in-training model on validation."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from ladder.errors import InvalidInput
from ladder.tuning.label_walk import GoldWalks

TASKS = ("auto", "classification", "extraction", "none")
GEN_BATCH = 16  # validation prompts decoded per batch: bounded memory, still batched


def _json_object(text: str) -> dict | None:
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def resolve_task(hp: dict, answers: Sequence[str]) -> dict:
    """`task`, `labels`, `schema` made concrete from what was asked and the training answers.

    "auto" is classification when the answers look like labels (short and repeating), extraction
    when every answer is a JSON object, and "none" (validation loss only) otherwise.
    """
    from ladder.data.formats import Example
    from ladder.data.stats import label_counts

    task, labels, schema = hp.get("task", "auto"), hp.get("labels"), hp.get("schema")
    if task not in TASKS:
        raise InvalidInput(f"hyperparameter task must be one of {', '.join(TASKS)}, not {task!r}", param="task")
    if labels is not None and (
        not isinstance(labels, list) or not labels or not all(isinstance(x, str) and x.strip() for x in labels)
    ):
        raise InvalidInput("hyperparameter labels must be a non-empty list of label strings", param="labels")
    if schema is not None:
        from ladder.pipelines import schema_check

        if not isinstance(schema, dict):
            raise InvalidInput("hyperparameter schema must be a JSON Schema object", param="schema")
        schema_check.check_schema(schema, param="schema")
    answers = [a.strip() for a in answers]
    distinct = list(dict.fromkeys(answers))
    if task == "auto":
        if labels:
            task = "classification"
        elif schema is not None or (answers and all(_json_object(a) is not None for a in answers)):
            task = "extraction"
        elif label_counts([Example([{"role": "assistant", "content": a}]) for a in answers]) is not None:
            task = "classification"  # the same test `ladder data stats` uses for "these are labels"
        else:
            task = "none"
    if task == "classification" and not labels:
        labels = sorted(distinct)
    return {"task": task, "labels": labels if task == "classification" else None, "schema": schema}


@dataclass
class Scored:
    value: float  # accuracy or field F1
    format: float  # share of outputs exactly in the required format


def score(task: str, outputs: Sequence[str], references: Sequence[str], labels=None, schema=None) -> Scored:
    """Accuracy (exact label after the pipeline's own normalisation) or field-level F1 of JSON outputs."""
    from ladder.evals.metrics import field_counts, field_prf
    from ladder.pipelines.parsers import parse_json, parse_label

    n = max(1, len(outputs))
    if task == "classification":
        correct = ok = 0
        for out, ref in zip(outputs, references, strict=True):
            pred, valid = parse_label(out, labels)
            gold, _ = parse_label(ref, labels)
            correct += pred is not None and pred == gold
            ok += valid
        return Scored(correct / n, ok / n)
    counts, ok = [], 0
    for out, ref in zip(outputs, references, strict=True):
        pred, valid = parse_json(out, schema)
        counts.append(field_counts(pred, _json_object(ref)))
        ok += valid
    return Scored(field_prf(counts)[2], ok / n)


class TaskMeter:
    """The in-training model's greedy answers to the validation prompts, scored by the task metric.

    The prompts go through the torch backend (the chat template and decoding the tuned model is
    served with), under the task's decoding constraint: labels from the label pipeline's scoring
    pass, JSON by constrained generation. For labels, most answers are settled during the
    trainer's validation-loss pass already (`reader`, label_walk), so that pass runs only for the rest.
    """

    def __init__(self, spec: dict, conversations: list[list[dict]], tokenizer):
        from ladder.models.constraints import Constraint

        self.task, self.labels, self.schema = spec["task"], spec.get("labels"), spec.get("schema")
        if self.task not in ("classification", "extraction"):
            raise ValueError(f"no task metric for task {self.task!r}")
        self.key = "valid_accuracy" if self.task == "classification" else "valid_f1"
        self.tok = tokenizer
        self._backend = None
        self._prompts_ids: list[list[int]] | None = None
        self.prompts = [c[:-1] for c in conversations]
        self.references = [c[-1]["content"] for c in conversations]
        if self.task == "extraction":
            longest = max(
                (len(tokenizer(r, add_special_tokens=False)["input_ids"]) for r in self.references), default=8
            )
            self.max_new_tokens = int(longest * 1.25) + 16  # JSON spacing varies more than a label does
            self.constraint = Constraint.json_schema(self.schema)

    def _backend_for(self, model, device: str):
        import torch

        from ladder.models.torch_backend import TorchBackend

        if self._backend is None or self._backend.model is not model:
            # Kept across evals: the backend caches the compiled constraint.
            self._backend = TorchBackend("in-training", model, self.tok, torch.device(device))
            self._backend.model.train()  # the backend sets eval mode; the trainer's next step wants dropout
        return self._backend

    def reader(self, model, device: str, data: list) -> GoldWalks | None:
        """For classification, what settles answers from the validation-loss pass (label_walk), else None.

        `data` is the validation slice as the trainer encoded it, in the order of `conversations`.
        """
        if self.task != "classification":
            return None
        from ladder.models.label_scores import label_token_ids

        backend = self._backend_for(model, device)
        labels = list(dict.fromkeys(self.labels))
        conts = label_token_ids(labels, backend.tok)
        return GoldWalks(labels, conts, self._prompt_ids(backend), self.references, data, backend.eos_ids)

    def __call__(self, model, device: str, reader: GoldWalks | None = None) -> dict:
        """The metric on the slice; answers `reader` settled during the loss pass are not computed again."""
        backend = self._backend_for(model, device)
        settled = reader.settled if reader is not None else {}
        todo = [i for i in range(len(self.prompts)) if i not in settled]
        model.eval()  # no dropout while decoding; training mode comes back below
        try:
            outputs = self._outputs(backend, todo) if todo else []
        finally:
            model.train()
        got = score(self.task, outputs, [self.references[i] for i in todo], self.labels, self.schema)
        n = len(self.prompts)
        # A settled answer is one of the labels (constrained), so in format; right when it is the reference.
        value = (got.value * len(todo) + sum(settled.values())) / n
        fmt = (got.format * len(todo) + len(settled)) / n
        return {self.key: value, "valid_format": fmt}

    def _prompt_ids(self, backend) -> list[list[int]]:
        from ladder.models.types import Message

        if self._prompts_ids is None:
            self._prompts_ids = [backend.encode([Message(m["role"], m["content"]) for m in p]) for p in self.prompts]
        return self._prompts_ids

    def _outputs(self, backend, todo: list[int]) -> list[str]:
        from ladder.models.types import ChatRequest, GenerationParams, Message

        if self.task == "classification":
            # What the served label pipeline answers (greedy under the choice constraint), read off
            # one scoring pass per GEN_BATCH prompts instead of decoding (label_scores.torch_passes).
            from ladder.models.label_scores import torch_passes

            labels = list(dict.fromkeys(self.labels))
            ids = self._prompt_ids(backend)
            passes = torch_passes(backend, [ids[i] for i in todo], labels, batch=GEN_BATCH)
            return [labels[p.choice] for p in passes]
        prompts = [[Message(m["role"], m["content"]) for m in self.prompts[i]] for i in todo]
        params = GenerationParams(max_tokens=self.max_new_tokens, temperature=0.0, constraint=self.constraint)
        outputs: list[str] = []
        for s in range(0, len(prompts), GEN_BATCH):
            outputs += [
                r.text for r in backend.chat_batch([ChatRequest(p, params) for p in prompts[s : s + GEN_BATCH]])
            ]
        return outputs
