"""The shipped sample task is well-formed: parseable, labelled within its taxonomy, sized as documented."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

from ladder import samples


def _chat_rows(path: Path) -> list[tuple[str, str]]:
    rows = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        obj = json.loads(line)
        msgs = obj["messages"]
        assert [m["role"] for m in msgs] == ["user", "assistant"], f"{path.name}:{lineno}"
        assert all(isinstance(m["content"], str) and m["content"].strip() for m in msgs), f"{path.name}:{lineno}"
        rows.append((msgs[0]["content"], msgs[1]["content"]))
    return rows


def test_categories_are_a_taxonomy_of_8_to_12_snake_case_labels() -> None:
    cats = samples.helpdesk_categories()
    names = [c["name"] for c in cats]
    assert 8 <= len(cats) <= 12
    assert len(set(names)) == len(names)
    assert all(re.fullmatch(r"[a-z]+(_[a-z]+)*", n) for n in names)
    assert all(c["description"].strip() and "\n" not in c["description"] for c in cats)
    assert samples.helpdesk_labels() == names


def test_docs_are_12_to_16_pages_of_300_to_900_words_with_headings() -> None:
    docs = samples.helpdesk_docs()
    assert 12 <= len(docs) <= 16
    for doc in docs:
        text = doc.read_text(encoding="utf-8")
        assert text.startswith("# "), doc.name
        assert 300 <= len(text.split()) <= 900, (doc.name, len(text.split()))


def test_train_and_test_are_labelled_within_the_taxonomy_and_stratified() -> None:
    labels = set(samples.helpdesk_labels())
    train = _chat_rows(samples.helpdesk_train())
    test = _chat_rows(samples.helpdesk_test())
    assert 100 <= len(test) <= 140
    assert 420 <= len(train) + len(test) <= 600
    assert {lab for _, lab in train + test} <= labels
    test_counts = Counter(lab for _, lab in test)
    train_counts = Counter(lab for _, lab in train)
    assert set(test_counts) == labels, "every category appears in test"
    assert set(train_counts) == labels
    assert min(test_counts.values()) >= 5


def test_no_duplicate_messages_within_or_across_splits() -> None:
    def norm(s: str) -> str:
        return " ".join(s.lower().split())

    train = [norm(m) for m, _ in _chat_rows(samples.helpdesk_train())]
    test = [norm(m) for m, _ in _chat_rows(samples.helpdesk_test())]
    assert len(set(train)) == len(train)
    assert len(set(test)) == len(test)
    assert not set(train) & set(test)


def test_messages_vary_in_length() -> None:
    lengths = [len(m.split()) for m, _ in _chat_rows(samples.helpdesk_train())]
    assert min(lengths) >= 4 and max(lengths) <= 80
    assert sum(n >= 40 for n in lengths) >= 5, "some long messages"
    assert sum(n <= 8 for n in lengths) >= 20, "some terse messages"


def test_questions_cite_existing_docs() -> None:
    doc_names = {p.name for p in samples.helpdesk_docs()}
    lines = samples.helpdesk_questions().read_text(encoding="utf-8").splitlines()
    assert len(lines) == 30
    for lineno, line in enumerate(lines, start=1):
        q = json.loads(line)
        assert q["question"].strip() and q["answer"].strip(), lineno
        assert q["source"] in doc_names, (lineno, q["source"])


def test_every_number_in_a_reference_answer_appears_in_its_source() -> None:
    # Prices, hours and limits are the facts a small model cannot know; the docs must state them.
    for line in samples.helpdesk_questions().read_text(encoding="utf-8").splitlines():
        q = json.loads(line)
        doc = (samples.helpdesk_dir() / "docs" / q["source"]).read_text(encoding="utf-8")
        numbers = re.findall(r"\$?\d[\d/:.\-]*\d|\$?\d", q["answer"])
        assert [n for n in numbers if n not in doc] == [], q["question"]


def test_regression_set_has_short_references() -> None:
    rows = _chat_rows(samples.regression_set())
    assert 30 <= len(rows) <= 60
    assert len({q for q, _ in rows}) == len(rows)
    assert all(len(ref.split()) <= 3 for _, ref in rows)
