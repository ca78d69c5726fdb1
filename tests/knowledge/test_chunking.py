"""Chunking: bounded size in tokens, whole words only, overlap between neighbours, structure kept."""

from __future__ import annotations

import re

import pytest

from ladder.errors import InvalidInput
from ladder.knowledge.chunking import check_settings, chunk_sections
from ladder.knowledge.parsers import Section


def words_count(texts: list[str]) -> list[int]:
    return [len(t.split()) for t in texts]


TEXT = "\n\n".join(" ".join(f"Sentence {p}.{s} has several plain words in it." for s in range(6)) for p in range(8))


def test_chunks_fit_the_size_and_never_cut_a_word():
    chunks = chunk_sections([Section(TEXT, "H", 3)], 40, 8, words_count)
    source_words = set(TEXT.split())
    assert len(chunks) > 5
    for c in chunks:
        assert c.tokens <= 40 and c.tokens == len(c.text.split())
        assert set(c.text.split()) <= source_words  # every word whole, as written
        assert (c.heading, c.page) == ("H", 3)
    assert [c.position for c in chunks] == list(range(len(chunks)))


def test_neighbours_overlap_and_cover_everything():
    chunks = chunk_sections([Section(TEXT)], 40, 8, words_count)
    for a, b in zip(chunks, chunks[1:], strict=False):
        tail = a.text.split()[-3:]
        assert " ".join(tail) in b.text  # the end of one chunk starts the next
    covered = " ".join(c.text for c in chunks)
    for sentence in re.findall(r"Sentence \d+\.\d+", TEXT):
        assert sentence in covered


def test_prefers_paragraph_boundaries():
    text = "alpha " * 10 + "\n\n" + "beta " * 10 + "\n\n" + "gamma " * 10
    chunks = chunk_sections([Section(text.strip())], 25, 0, words_count)
    # Two whole paragraphs fit in 25 tokens; the third is not split to fill the rest.
    assert [sorted(set(c.text.split())) for c in chunks] == [["alpha", "beta"], ["gamma"]]
    assert chunks[0].text.count("\n\n") == 1


def test_sections_do_not_mix():
    chunks = chunk_sections([Section("one two", "A"), Section("three four", "B")], 50, 5, words_count)
    assert [(c.text, c.heading) for c in chunks] == [("one two", "A"), ("three four", "B")]


def test_settings_are_checked():
    with pytest.raises(InvalidInput, match="chunk_size 1000"):
        check_settings(1000, 10)
    with pytest.raises(InvalidInput, match="chunk_overlap 150"):
        check_settings(200, 150)
