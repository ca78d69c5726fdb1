"""Validation before fine-tuning: OpenAI's format rules plus size, length, duplicate and leakage checks."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from ladder.data.formats import Example, Problem, label_of, parse_dataset, prompt_of, read_dataset
from ladder.data.similar import cross_matches, near_duplicates, normalise
from ladder.data.stats import label_counts
from ladder.data.tokens import auto_epochs, count_tokens, default_max_length, tokens_per_second
from ladder.errors import InvalidInput
from ladder.store.db import DEFAULT_PROJECT

# OpenAI refuses a training file with fewer examples than this.
HARD_MINIMUM = 10
# Examples needed per task type, from practice: (minimum, ideal). Below the minimum a LoRA
# will likely memorise the examples; few-shot prompting is then the better rung.
TASK_MINIMUMS: dict[str, tuple[int, int]] = {
    "classification": (200, 2000),
    "extraction": (500, 5000),
    "style": (500, 2000),
    "knowledge": (1000, 10000),
    "open": (2000, 20000),
}
TASK_ALIASES = {
    "format": "style",
    "style-format": "style",
    "domain": "knowledge",
    "generation": "open",
    "open-ended": "open",
    "classify": "classification",
    "extract": "extraction",
}
IMBALANCE_RATIO = 10


def task_type(task: str | None) -> str | None:
    if task is None:
        return None
    t = TASK_ALIASES.get(task.lower(), task.lower())
    if t not in TASK_MINIMUMS:
        raise InvalidInput(f"unknown task type {task!r}; use one of {', '.join(TASK_MINIMUMS)}", param="task")
    return t


@dataclass
class ValidationReport:
    path: str
    n_examples: int
    problems: list[Problem]
    model: str | None = None
    tokenizer: str | None = None
    tokens: list[int] = field(default_factory=list)  # per example, after the chat template
    trained_tokens: list[int] = field(default_factory=list)  # per example, the assistant tokens with loss
    lines: list[int] = field(default_factory=list)  # source line of each example
    max_length: int = 0
    over_length: list[tuple[int, int]] = field(default_factory=list)  # (line, tokens)
    duplicates: list[tuple[int, int]] = field(default_factory=list)  # (line, line of the first copy)
    near_duplicates: list[tuple[int, int, float]] = field(default_factory=list)  # (line, line, jaccard)
    conflicts: list[tuple[int, int]] = field(default_factory=list)  # same input, other output: (line, line)
    labels: dict[str, int] | None = None
    test_path: str | None = None
    leakage: list[tuple[int, int, float]] = field(default_factory=list)  # (test line, train line, similarity)
    task: str | None = None
    task_inferred: bool = False
    minimum: int | None = None
    ideal: int | None = None
    epochs: int = 0
    tokens_per_epoch: int = 0
    trained_tokens_per_epoch: int = 0
    tokens_per_second: float = 0.0
    speed_source: str = ""
    estimated_seconds: float = 0.0

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "warning"]

    @property
    def ok(self) -> bool:
        """True when fine-tuning may go ahead (warnings allowed, no errors)."""
        return not self.errors

    def as_dict(self) -> dict:
        d = asdict(self)
        d["problems"] = [p.as_dict() for p in self.problems]
        d["ok"] = self.ok
        d["n_errors"], d["n_warnings"] = len(self.errors), len(self.warnings)
        return d


def _warn(report: ValidationReport, line: int, message: str, hint: str, code: str, fld: str = "") -> None:
    report.problems.append(Problem(line, fld, message, hint, severity="warning", code=code))


def _conversation(e: Example) -> str:
    return "\n".join(f"{m['role']}: {m['content']}" for m in e.messages if m["role"] != "system")


def _inputs(e: Example) -> str:
    """Everything the model is shown before its final answer (system prompt aside)."""
    last = max(i for i, m in enumerate(e.messages) if m["role"] == "assistant")
    return "\n".join(m["content"] for m in e.messages[:last] if m["role"] != "system") or prompt_of(e)


def _check_duplicates(report: ValidationReport, examples: list[Example]) -> None:
    seen: dict[str, int] = {}
    for e in examples:
        key = _conversation(e)
        if key in seen:
            report.duplicates.append((e.line, seen[key]))
            _warn(
                report,
                e.line,
                f"exact duplicate of line {seen[key]}",
                "remove it: a duplicate counts the same example twice",
                "duplicate",
            )
        else:
            seen[key] = e.line
    answers: dict[str, tuple[int, str]] = {}
    for e in examples:
        key, answer = normalise(_inputs(e)), label_of(e)
        if key in answers and answers[key][1] != answer:
            report.conflicts.append((e.line, answers[key][0]))
            _warn(
                report,
                e.line,
                f"same input as line {answers[key][0]} but a different answer",
                "keep one answer per input, or the model learns to guess between them",
                "conflict",
            )
        answers.setdefault(key, (e.line, answer))
    texts = [_conversation(e) for e in examples]
    exact = {d[0] for d in report.duplicates}
    for m in near_duplicates(texts):
        line, other = examples[m.i].line, examples[m.j].line
        if line not in exact:
            report.near_duplicates.append((line, other, round(m.similarity, 3)))
            _warn(
                report,
                line,
                f"near duplicate of line {other} (similarity {m.similarity:.2f})",
                "near copies add little; vary the examples or remove them",
                "near_duplicate",
            )


def _check_leakage(report: ValidationReport, examples: list[Example], test_path: str | Path, **fmt) -> None:
    test = read_dataset(test_path, **fmt)
    report.test_path = str(test_path)
    for m in cross_matches([_inputs(e) for e in test], [_inputs(e) for e in examples]):
        tline, line = test[m.i].line, examples[m.j].line
        report.leakage.append((tline, line, round(m.similarity, 3)))
        what = "the same input as" if m.similarity >= 1.0 else f"nearly the same input ({m.similarity:.2f}) as"
        _warn(
            report,
            line,
            f"{what} line {tline} of the test file {Path(test_path).name}",
            "remove it from one file, or the test score overstates quality",
            "leakage",
        )


def _check_size(report: ValidationReport, n: int, task: str | None) -> None:
    if n < HARD_MINIMUM:
        report.problems.append(
            Problem(
                0,
                "",
                f"only {n} examples; fine-tuning needs at least {HARD_MINIMUM}",
                "add examples, or use few-shot prompting instead",
                code="too_few",
            )
        )
    if task is None:
        return
    report.minimum, report.ideal = TASK_MINIMUMS[task]
    if n < report.minimum:
        _warn(
            report,
            0,
            f"{n} examples is below the {report.minimum} minimum for {task} "
            f"({report.ideal} ideal): fine-tuning will likely overfit",
            "few-shot prompting is the better rung at this size; collect more examples to fine-tune",
            "below_minimum",
        )


def _check_labels(report: ValidationReport) -> None:
    if not report.labels:
        return
    most, least = max(report.labels.values()), min(report.labels.values())
    if most >= IMBALANCE_RATIO * least:
        rare = [k for k, v in report.labels.items() if v == least][:5]
        _warn(
            report,
            0,
            f"labels are imbalanced: {most} vs {least} examples ({', '.join(rare)})",
            "add examples of the rare labels, or the model will rarely predict them",
            "imbalance",
        )


def validate(
    path: str | Path,
    *,
    model: str | None = None,
    task: str | None = None,
    test_path: str | Path | None = None,
    input_col: str | None = None,
    output_col: str | None = None,
    system: str | None = None,
    max_length: int | None = None,
    epochs: int | None = None,
    count: bool = True,
    project_id: str = DEFAULT_PROJECT,
) -> ValidationReport:
    """Check a training file and report every problem, with sizes, tokens and an estimated training time.

    `count=False` skips the tokenizer (token counts and time are then left at zero).
    """
    fmt = {"input_col": input_col, "output_col": output_col, "system": system}
    examples, problems = parse_dataset(path, **fmt)
    report = ValidationReport(
        str(path),
        len(examples),
        list(problems),
        model=model,
        lines=[e.line for e in examples],
        max_length=max_length or default_max_length(),
    )
    for e in examples:
        if all(m.get("weight", 1) == 0 for m in e.messages if m["role"] == "assistant"):
            _warn(
                report,
                e.line,
                "every assistant message has weight 0, so nothing here is trained",
                "set weight 1 on at least one assistant message",
                "no_trained_tokens",
                "messages",
            )
    _check_duplicates(report, examples)
    if test_path is not None:
        _check_leakage(report, examples, test_path, **fmt)
    report.labels = label_counts(examples)
    _check_labels(report)
    report.task = task_type(task)
    if report.task is None and report.labels:
        report.task, report.task_inferred = "classification", True
    _check_size(report, len(examples), report.task)
    if count and examples:
        counts = count_tokens(examples, model, project_id)
        report.tokenizer = counts.tokenizer
        report.tokens, report.trained_tokens = counts.total, counts.trained
        for e, n in zip(examples, counts.total, strict=True):
            if n > report.max_length:
                report.over_length.append((e.line, n))
                _warn(
                    report,
                    e.line,
                    f"{n} tokens, over the maximum length {report.max_length}",
                    "it will be truncated in training; shorten it or raise max_seq_length",
                    "too_long",
                )
        report.epochs = epochs or auto_epochs(len(examples))
        report.tokens_per_epoch = sum(min(n, report.max_length) for n in counts.total)
        report.trained_tokens_per_epoch = sum(counts.trained)
        report.tokens_per_second, report.speed_source = tokens_per_second(model, project_id)
        report.estimated_seconds = report.epochs * report.tokens_per_epoch / report.tokens_per_second
    report.problems.sort(key=lambda p: (p.severity != "error", p.line))
    return report
