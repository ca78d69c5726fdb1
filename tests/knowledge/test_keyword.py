"""Keyword search: BM25 scored in memory from FTS5's postings ranks exactly as FTS5's bm25() does."""

from __future__ import annotations

import random

import pytest

from ladder.knowledge import keyword
from ladder.knowledge.records import rowid_range
from ladder.store.db import get_db

DEPTH = 20


def _vocabulary(rng: random.Random, n: int) -> list[str]:
    letters = "abcdefghijklmnoprstuvw"
    words: set[str] = set()
    while len(words) < n:
        words.add("".join(rng.choice(letters) for _ in range(rng.randint(3, 8))))
    return sorted(words)


@pytest.fixture
def corpus():
    """3,000 rows of Zipf-distributed words in one KB's rowid range, 500 in another's."""
    rng = random.Random(7)
    vocab = _vocabulary(rng, 400) + ["changes", "changed", "change", "café", "cafe"]
    weights = [1 / (i + 1) for i in range(len(vocab))]
    conn = get_db().connect()

    def rows(num: int, n: int):
        lo, _ = rowid_range(num)
        for i in range(n):
            text = " ".join(rng.choices(vocab, weights, k=rng.randint(15, 70)))
            heading = " ".join(rng.choices(vocab, weights, k=3)) if i % 4 == 0 else None
            yield lo + i, text, heading, f"kb{num}"

    with get_db().tx() as tx:
        tx.executemany("INSERT INTO kb_fts(rowid, text, heading, kb_id) VALUES (?,?,?,?)", rows(901, 3000))
        tx.executemany("INSERT INTO kb_fts(rowid, text, heading, kb_id) VALUES (?,?,?,?)", rows(902, 500))
    return conn, vocab, weights


def scope(num: int, generation: int = 0) -> keyword.Scope:
    return keyword.Scope(*rowid_range(num), f"kb{num}", generation)


def fts5(conn, words, sc):
    return keyword.fts5_top_rows(conn, words, sc, DEPTH)


def top(conn, words, sc):
    return keyword.top_rows(conn, str(get_db().path), words, sc, DEPTH)


def assert_same_ranking(got, want):
    assert [r for r, _ in got] == [r for r, _ in want]  # ties are cut by rowid on both paths
    assert [s for _, s in got] == pytest.approx([s for _, s in want], rel=1e-12)


def random_queries(vocab, weights, n, seed=11):
    rng = random.Random(seed)
    for _ in range(n):
        words = list(dict.fromkeys(rng.choices(vocab, weights, k=rng.randint(1, 8))))
        if rng.random() < 0.2:
            words.append(rng.choice(["zzzunseen", "Changes", "café"]))
        yield words


def test_in_memory_bm25_ranks_as_fts5_does(corpus):
    conn, vocab, weights = corpus
    sc = scope(901)
    for words in random_queries(vocab, weights, 150):
        assert_same_ranking(top(conn, words, sc), fts5(conn, words, sc))
    # the other KB's rows count in the statistics (one FTS table) but are never returned
    other = scope(902)
    got = top(conn, vocab[:6], other)
    assert got and all(other.lo <= r <= other.hi for r, _ in got)
    assert_same_ranking(got, fts5(conn, vocab[:6], other))


def test_phrases_and_document_filters_go_to_fts5(corpus, monkeypatch):
    conn, vocab, _ = corpus
    calls = []
    real = keyword.fts5_top_rows
    monkeypatch.setattr(keyword, "fts5_top_rows", lambda *a: calls.append(a[1]) or real(*a))
    sc = scope(901)
    top(conn, [vocab[0], "foo_bar"], sc)  # "foo_bar" is two index tokens: a phrase
    sc.doc_filter = '["doc-x"]'
    assert top(conn, vocab[:3], sc) == []  # no kb_chunks rows hold these rowids
    assert calls == [[vocab[0], "foo_bar"], vocab[:3]]


def test_a_new_generation_is_read_again_and_the_cache_stays_bounded(corpus, monkeypatch):
    conn, vocab, weights = corpus
    words = vocab[:4]
    before = top(conn, words, scope(901))
    lo, _ = rowid_range(901)
    with get_db().tx() as tx:  # ten rows go; a new one holds every query word twice, in its heading too
        tx.execute("DELETE FROM kb_fts WHERE rowid BETWEEN ? AND ?", (lo + 1, lo + 10))
        tx.execute(
            "INSERT INTO kb_fts(rowid, text, heading, kb_id) VALUES (?,?,?,?)",
            (lo + 5000, " ".join(words * 2), words[0], "kb901"),
        )
    assert top(conn, words, scope(901, generation=1))[0][0] == lo + 5000
    assert keyword._kbs[(str(get_db().path), "kb901")]._postings  # patched, not started over
    for q in random_queries(vocab, weights, 40, seed=5):
        assert_same_ranking(top(conn, q, scope(901, generation=1)), fts5(conn, q, scope(901)))
    assert top(conn, words, scope(901, generation=1))[0] != before[0]
    monkeypatch.setattr(keyword, "MAX_CACHED_POSTINGS", 2000)
    for q in random_queries(vocab, weights, 40, seed=3):
        assert_same_ranking(top(conn, q, scope(901, generation=1)), fts5(conn, q, scope(901)))
        held = sum(k.postings_held for k in keyword._kbs.values())
        asked = {t for ts in keyword.tokenize(conn, q) for t in ts}
        # past the cap the caches start over: what is held then is this query's terms only
        assert held <= 2000 or set(keyword._kbs[(str(get_db().path), "kb901")]._postings) <= asked


def test_term_statistics_follow_the_index_tokenizer(corpus):
    conn, _, _ = corpus
    total = conn.execute("SELECT COUNT(*) FROM kb_fts").fetchone()[0]
    assert keyword._global_stats(conn).rows == total == 3500
    tokens = keyword.tokenize(conn, ["changes", "change", "cafe", "café", "foo_bar", "x"])
    # porter stemming and diacritics removal, as in kb_fts: these pairs are one index term each
    assert tokens[0] == tokens[1] == ["chang"] and tokens[2] == tokens[3] == ["cafe"]
    assert tokens[4] == ["foo", "bar"] and tokens[5] == ["x"]


def test_a_new_connection_works_when_every_word_is_already_tokenized(corpus):
    import sqlite3

    conn, vocab, _ = corpus
    words = vocab[:3]
    first = top(conn, words, scope(901))
    other = sqlite3.connect(get_db().path)  # no helper tables yet; the words' tokens are cached
    try:
        assert keyword.top_rows(other, str(get_db().path), words, scope(901), DEPTH) == first
    finally:
        other.close()
