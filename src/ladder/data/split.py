"""Deterministic train/test splits (seeded, optionally stratified by label, same inputs kept together)."""

from __future__ import annotations

import math
import random
from collections import defaultdict
from pathlib import Path

from ladder.data.formats import Example, label_of, read_dataset, write_jsonl
from ladder.data.similar import normalise
from ladder.data.stats import label_counts
from ladder.errors import InvalidInput


def _groups(examples: list[Example]) -> list[list[int]]:
    """Indices grouped by normalised input, so a repeated input never lands on both sides (leakage)."""
    by_input: dict[str, list[int]] = defaultdict(list)
    for i, e in enumerate(examples):
        by_input[normalise("\n".join(m["content"] for m in e.messages if m["role"] == "user"))].append(i)
    return list(by_input.values())


def _take(groups: list[list[int]], n_test: int, rng: random.Random) -> set[int]:
    """Shuffle the groups and fill the test side up to n_test examples."""
    order = list(groups)
    rng.shuffle(order)
    test: set[int] = set()
    for g in order:
        if len(test) >= n_test:
            break
        if len(test) + len(g) <= n_test or not test:
            test.update(g)
    return test


def _test_count(n: int, test: float) -> int:
    if test <= 0:
        raise InvalidInput("--test must be a fraction in (0, 1) or a count of examples >= 1", param="test")
    k = round(n * test) if test < 1 else int(test)
    if not 1 <= k < n:
        raise InvalidInput(f"cannot put {k} of {n} examples in the test file; both files need examples", param="test")
    return k


def split_examples(
    examples: list[Example], test: float = 0.2, *, stratify: bool = False, seed: int = 0
) -> tuple[list[Example], list[Example]]:
    """(train, test) from examples; the same seed and input always give the same split."""
    n_test = _test_count(len(examples), test)
    rng = random.Random(seed)
    groups = _groups(examples)
    if not stratify:
        chosen = _take(groups, n_test, rng)
    else:
        if label_counts(examples) is None:
            raise InvalidInput(
                "--stratify needs outputs that are labels (short answers that repeat); "
                "these outputs look like free text",
                param="stratify",
            )
        by_label: dict[str, list[list[int]]] = defaultdict(list)
        for g in groups:
            by_label[label_of(examples[g[0]])].append(g)
        chosen = set()
        frac = n_test / len(examples)
        # Largest remainder per label: each label gets its share, the shares add up to n_test.
        sizes = {k: sum(map(len, gs)) for k, gs in sorted(by_label.items())}
        quota = {k: math.floor(v * frac) for k, v in sizes.items()}
        rest = sorted(sizes, key=lambda k: (-(sizes[k] * frac - quota[k]), k))
        for k in rest[: n_test - sum(quota.values())]:
            quota[k] += 1
        for k in sorted(by_label):
            chosen |= _take(by_label[k], quota[k], rng) if quota[k] else set()
    train = [e for i, e in enumerate(examples) if i not in chosen]
    held = [e for i, e in enumerate(examples) if i in chosen]
    return train, held


def split(
    path: str | Path,
    test: float = 0.2,
    stratify: bool = False,
    seed: int = 0,
    out_dir: str | Path | None = None,
    *,
    input_col: str | None = None,
    output_col: str | None = None,
    system: str | None = None,
) -> tuple[Path, Path]:
    """Write `<name>.train.jsonl` and `<name>.test.jsonl` (chat form) next to the file or in out_dir.

    `test` is a fraction (0.2) or a number of examples (500). Examples keep their source order.
    """
    p = Path(path)
    examples = read_dataset(p, input_col=input_col, output_col=output_col, system=system)
    train, held = split_examples(examples, test, stratify=stratify, seed=seed)
    out = Path(out_dir) if out_dir else p.parent
    stem = p.name.rsplit(".", 1)[0]
    return write_jsonl(train, out / f"{stem}.train.jsonl"), write_jsonl(held, out / f"{stem}.test.jsonl")
