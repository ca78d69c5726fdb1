"""The row lengths keyword search reads instead of FTS5's private storage: counted at ingest as FTS5
counts them, counted once for chunks written before they were stored, and the ranking stays FTS5's."""

from __future__ import annotations

import sqlite3
from importlib import resources
from pathlib import Path

import pytest

from ladder.knowledge import keyword, service
from ladder.knowledge.records import rowid_range
from ladder.settings import get_settings
from ladder.store.db import Database, get_db
from tests.knowledge.test_keyword import (
    DEPTH,
    add_chunks,
    add_kb,
    assert_same_ranking,
    corpus_rows,
    corpus_vocab,
    fts5,
    make_corpus,
    random_queries,
    scope,
    top,
)

pytestmark = pytest.mark.sqlite_only  # FTS5 and the in-memory BM25 are the SQLite engine's


@pytest.fixture
def corpus():
    return make_corpus()


def fts5_counts(conn) -> dict[int, tuple[int, int]]:
    """rowid -> (text tokens, heading tokens) as kb_fts's own index holds them (its fts5vocab instance rows)."""
    conn.execute("CREATE VIRTUAL TABLE IF NOT EXISTS temp.test_fts_instances USING fts5vocab(main, kb_fts, instance)")
    counts: dict[int, list[int]] = {}
    for doc, col, n in conn.execute("SELECT doc, col, COUNT(*) FROM temp.test_fts_instances GROUP BY doc, col"):
        counts.setdefault(doc, [0, 0])[col == "heading"] = n
    return {doc: (t, h) for doc, (t, h) in counts.items()}


def stored_lengths(conn) -> dict[int, tuple[int | None, int | None]]:
    return {r[0]: (r[1], r[2]) for r in conn.execute("SELECT rowid, fts_text_len, fts_heading_len FROM kb_chunks")}


def stats(conn) -> tuple[int, int, int]:
    return tuple(conn.execute("SELECT n_rows, n_tokens, n_unsized FROM kb_keyword_stats").fetchone())


MARKDOWN = """# Café déjà vu

Changes changed CHANGE: foo_bar, x-ray, 3.14159, e-mail e.mail e_mail; naïve coöperation.
A long token aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa end.

## Under the heading — «quoted» words, 東京 and Ελληνικά

Plain text again, with the the the repeated words and an apostrophe: don't won't.

### A heading with no text under it
"""


@pytest.mark.usefixtures("fake_embedder")
def test_lengths_stored_at_ingest_equal_fts5s_own_counts():
    service.create_kb("notes")
    service.add_document("notes", "notes.md", MARKDOWN.encode())
    service.add_document("notes", "faq.csv", b"text,topic\nBecause of changes,why\nWith caf\xc3\xa9s,how\n")
    conn = get_db().connect()
    stored, counted = stored_lengths(conn), fts5_counts(conn)
    assert stored and any(h for _, h in stored.values())  # some chunks have a heading
    assert stored == {rowid: counted.get(rowid, (0, 0)) for rowid in stored}
    n_rows = conn.execute("SELECT COUNT(*) FROM kb_fts").fetchone()[0]
    assert stats(conn) == (n_rows, sum(t + h for t, h in stored.values()), 0)
    service.remove_doc("notes", "faq.csv")  # the totals follow rows removed too
    stored = stored_lengths(conn)
    assert stats(conn) == (len(stored), sum(t + h for t, h in stored.values()), 0) and len(stored) < n_rows
    # and bm25() computed from them is FTS5's own
    kb = service.get_kb("notes")
    sc = keyword.Scope(*rowid_range(kb.num), kb.id, kb.generation)
    for words in (["change"], ["cafe", "heading"], ["words", "text", "the"], ["東京", "naive"]):
        assert_same_ranking(keyword.top_rows(conn, get_db(), words, sc, DEPTH), fts5(conn, words, sc))


def test_chunks_without_lengths_are_counted_once_and_rank_the_same(corpus, monkeypatch):
    conn, vocab, weights = corpus
    before, before_stats = stored_lengths(conn), stats(conn)
    with get_db().tx() as tx:  # as chunks written before migration 0007 are
        tx.execute("UPDATE kb_chunks SET fts_text_len = NULL, fts_heading_len = NULL WHERE rowid % 3 = 0")
    unsized = stats(conn)[2]
    assert unsized == sum(1 for r in before if r % 3 == 0) > 0
    calls = []
    real = keyword.fts5_top_rows
    monkeypatch.setattr(keyword, "fts5_top_rows", lambda *a: calls.append(a[1]) or real(*a))
    queries = list(random_queries(vocab, weights, 30))
    for words in queries:  # not counted yet: FTS5 ranks, the same ranking
        assert top(conn, words, scope(901)) == real(conn, words, scope(901), DEPTH)
    assert len(calls) == len(queries)
    assert keyword.fill_lengths(get_db()) == unsized
    assert stored_lengths(conn) == before and stats(conn) == before_stats
    assert keyword.fill_lengths(get_db()) == 0  # once
    calls.clear()
    for words in queries:
        assert_same_ranking(top(conn, words, scope(901)), real(conn, words, scope(901), DEPTH))
    assert calls == []  # in memory again


def old_schema_database(path) -> sqlite3.Connection:
    """A database as ladder left it before migration 0007 (migrations 1-6 applied)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute(
        "CREATE TABLE schema_migrations (number INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at REAL NOT NULL)"
    )
    files = [f for f in resources.files("ladder.store.migrations.sqlite").iterdir() if f.name.endswith(".sql")]
    for f in sorted(files, key=lambda f: f.name):
        if int(f.name[:4]) <= 6:
            conn.executescript(f.read_text(encoding="utf-8"))
            conn.execute("INSERT INTO schema_migrations VALUES (?, ?, 0)", (int(f.name[:4]), f.name[5:-4]))
    assert "fts_text_len" not in {r[1] for r in conn.execute("PRAGMA table_info(kb_chunks)")}
    return conn


@pytest.mark.usefixtures("fake_embedder")
def test_a_database_migrated_from_the_old_schema_ranks_identically():
    rng, vocab, weights = corpus_vocab()
    old = old_schema_database(get_settings().db_path)
    old.execute("BEGIN")
    for num, n in ((901, 1500), (902, 300)):
        add_kb(old, num)
        add_chunks(old, corpus_rows(rng, vocab, weights, num, n), lengths=False)
    old.execute("COMMIT")
    queries = list(random_queries(vocab, weights, 60, seed=13))
    want = [fts5(old, words, scope(901)) for words in queries]
    old.close()

    db = get_db()  # opens the file and applies migration 0007
    conn = db.connect()
    assert stats(conn) == (1800, 0, 1800)
    # a search counts the lengths first (keyword only: the hash embedder is never run)
    hits = service.search(["kb901"], " ".join(queries[0]), k=DEPTH, weights={"bm25": 1.0, "dense": 0.0})
    assert [h.chunk_id for h in hits] == [f"chunk{rowid}" for rowid, _ in want[0]]
    assert stats(conn)[2] == 0
    stored, counted = stored_lengths(conn), fts5_counts(conn)
    assert stored == {rowid: counted.get(rowid, (0, 0)) for rowid in stored}
    for words, expected in zip(queries, want, strict=True):
        assert_same_ranking(top(conn, words, scope(901)), expected)


def test_no_fts5_shadow_table_is_read():
    """FTS5's own tables (kb_fts_data, _idx, _content, _docsize, _config) have no promised format."""
    src = Path(keyword.__file__).resolve().parents[1]
    found = [str(p) for p in src.rglob("*") if p.suffix in (".py", ".sql") and "kb_fts_" in p.read_text("utf-8")]
    assert found == []


def test_the_caches_live_on_the_database(corpus, tmp_path):
    conn, vocab, _ = corpus
    top(conn, vocab[:3], scope(901))
    assert set(keyword._cache(get_db()).kbs) == {"kb901"}
    other = Database(tmp_path / "other.db")  # another database in the same process shares nothing
    try:
        assert "keyword" not in other.caches and keyword._cache(other).kbs == {}
    finally:
        other.close()
