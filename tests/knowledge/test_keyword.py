"""Keyword search: BM25 scored in memory from FTS5's postings ranks exactly as FTS5's bm25() does."""

from __future__ import annotations

import random

import pytest

from ladder.knowledge import keyword
from ladder.knowledge.records import rowid_range
from ladder.store.db import get_db

pytestmark = pytest.mark.sqlite_only  # FTS5 and the in-memory BM25 are the SQLite engine's

DEPTH = 20


def _vocabulary(rng: random.Random, n: int) -> list[str]:
    letters = "abcdefghijklmnoprstuvw"
    words: set[str] = set()
    while len(words) < n:
        words.add("".join(rng.choice(letters) for _ in range(rng.randint(3, 8))))
    return sorted(words)


def add_kb(conn, num: int) -> str:
    """A KB row for `num` (id kb<num>) and one document to hold its chunks; returns the document id."""
    conn.execute(
        "INSERT INTO kbs(id, project_id, name, num, chunk_size, chunk_overlap, embed_model, embed_dim, created_at)"
        " VALUES (?, 'proj-default', ?, ?, 200, 30, 'hash-64', 64, 0)",
        (f"kb{num}", f"kb{num}", num),
    )
    conn.execute(
        "INSERT INTO kb_docs(id, kb_id, project_id, name, source, source_sha256, format, bytes, n_chunks, created_at)"
        " VALUES (?, ?, 'proj-default', 'd', 'd', ?, 'text', 0, 0, 0)",
        (f"doc{num}", f"kb{num}", f"sha{num}"),
    )
    return f"doc{num}"


def add_chunks(conn, rows, *, lengths: bool = True) -> None:
    """Chunks (rowid, text, heading, kb id) into kb_chunks (kb_fts by trigger; zero vectors of 64
    dimensions), with their FTS lengths counted as ingest counts them or, as before migration 0007, without."""
    rows = [(rowid, f"chunk{rowid}", kb, "doc" + kb[2:], text, heading) for rowid, text, heading, kb in rows]
    sql = "INSERT INTO kb_chunks(rowid, id, kb_id, doc_id, text, heading, position, tokens, chunk_size, chunk_overlap,"
    values = "VALUES (?, ?, ?, ?, ?, ?, 0, 1, 200, 30, zeroblob(256)"
    if not lengths:
        conn.executemany(f"{sql} embedding) {values})", rows)
        return
    sizes = keyword.fts_lengths(conn, [(r[4], r[5]) for r in rows])
    conn.executemany(
        f"{sql} embedding, fts_text_len, fts_heading_len) {values}, ?, ?)",
        [(*r, *size) for r, size in zip(rows, sizes, strict=True)],
    )


def corpus_rows(rng: random.Random, vocab: list[str], weights: list[float], num: int, n: int):
    lo, _ = rowid_range(num)
    for i in range(n):
        text = " ".join(rng.choices(vocab, weights, k=rng.randint(15, 70)))
        heading = " ".join(rng.choices(vocab, weights, k=3)) if i % 4 == 0 else None
        yield lo + i, text, heading, f"kb{num}"


def corpus_vocab() -> tuple[random.Random, list[str], list[float]]:
    rng = random.Random(7)
    vocab = _vocabulary(rng, 400) + ["changes", "changed", "change", "café", "cafe"]
    return rng, vocab, [1 / (i + 1) for i in range(len(vocab))]


@pytest.fixture
def corpus():
    return make_corpus()


def make_corpus():
    """3,000 rows of Zipf-distributed words in one KB's rowid range, 500 in another's."""
    rng, vocab, weights = corpus_vocab()
    conn = get_db().connect()
    with get_db().tx() as tx:
        for num, n in ((901, 3000), (902, 500)):
            add_kb(tx, num)
            add_chunks(tx, corpus_rows(rng, vocab, weights, num, n))
    return conn, vocab, weights


def scope(num: int, generation: int = 0) -> keyword.Scope:
    return keyword.Scope(*rowid_range(num), f"kb{num}", generation)


def fts5(conn, words, sc):
    return keyword.fts5_top_rows(conn, words, sc, DEPTH)


def top(conn, words, sc):
    return keyword.top_rows(conn, get_db(), words, sc, DEPTH)


def cached_kbs() -> dict:
    return keyword._cache(get_db()).kbs


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
        tx.execute("DELETE FROM kb_chunks WHERE rowid BETWEEN ? AND ?", (lo + 1, lo + 10))
        add_chunks(tx, [(lo + 5000, " ".join(words * 2), words[0], "kb901")])
    assert top(conn, words, scope(901, generation=1))[0][0] == lo + 5000
    assert cached_kbs()["kb901"]._postings  # patched, not started over
    for q in random_queries(vocab, weights, 40, seed=5):
        assert_same_ranking(top(conn, q, scope(901, generation=1)), fts5(conn, q, scope(901)))
    assert top(conn, words, scope(901, generation=1))[0] != before[0]
    monkeypatch.setattr(keyword, "MAX_CACHED_POSTINGS", 2000)
    for q in random_queries(vocab, weights, 40, seed=3):
        assert_same_ranking(top(conn, q, scope(901, generation=1)), fts5(conn, q, scope(901)))
        held = sum(k.postings_held for k in cached_kbs().values())
        asked = {t for ts in keyword.tokenize(conn, q) for t in ts}
        # past the cap the caches start over: what is held then is this query's terms only
        assert held <= 2000 or set(cached_kbs()["kb901"]._postings) <= asked


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
        assert keyword.top_rows(other, get_db(), words, scope(901), DEPTH) == first
    finally:
        other.close()
