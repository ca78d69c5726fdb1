"""Knowledge bases on PostgreSQL: the lexeme counts follow every document change, and keyword search
ranks the chunks holding the query's rarer words when a KB is large."""

from __future__ import annotations

import pytest

from ladder.knowledge import pg_search, service
from ladder.settings import reset_settings
from ladder.store.db import get_db, reset_dbs

pytestmark = pytest.mark.usefixtures("fake_embedder")


@pytest.fixture(autouse=True)
def on_postgres(postgres_url, monkeypatch):
    monkeypatch.setenv("LADDER_DATABASE_URL", postgres_url)
    reset_settings()
    reset_dbs()
    yield
    reset_dbs()


def _counts() -> dict[tuple[str, str], int]:
    return {(r[0], r[1]): r[2] for r in get_db().query("SELECT kb_id, lexeme, df FROM kb_terms")}


def _recounted() -> dict[tuple[str, str], int]:
    rows = get_db().query(
        "SELECT c.kb_id, t.lexeme, count(*) FROM kb_chunks c, unnest(c.tsv) t GROUP BY c.kb_id, t.lexeme"
    )
    return {(r[0], r[1]): r[2] for r in rows}


def test_lexeme_counts_follow_adds_replacements_and_deletes():
    service.create_kb("a")
    service.create_kb("b")
    service.add_document("a", "z.txt", b"Zebras graze on the savanna grass.")
    service.add_document("a", "o.jsonl", b'{"text": "Otters float."}\n{"text": "Otters sleep and zebras run."}\n')
    service.add_document("b", "z.txt", b"Zebras in another base.")
    assert _counts() == _recounted() and _counts()[(service.get_kb("a").id, "zebra")] == 2
    service.add_document("a", "o.jsonl", b'{"text": "Otters only."}\n')  # replaces both rows
    assert _counts() == _recounted() and _counts()[(service.get_kb("a").id, "zebra")] == 1
    service.remove_doc("a", "z.txt")
    assert _counts() == _recounted() and (service.get_kb("a").id, "zebra") not in _counts()
    service.delete_kb("b")
    assert _counts() == _recounted() and all(kb == service.get_kb("a").id for kb, _ in _counts())


def test_a_large_kb_ranks_the_chunks_holding_the_rare_word(monkeypatch):
    service.create_kb("big")
    common = "".join(f'{{"text": "the account page shows the account balance number {i}"}}\n' for i in range(60))
    service.add_document("big", "common.jsonl", common.encode())
    service.add_document("big", "rare.txt", b"Chargeback disputes go to the account team.")
    monkeypatch.setattr(pg_search, "KEYWORD_CANDIDATES", 5)  # "account" (61 chunks) is then too common
    hits = service.search(["big"], "account chargeback", k=3, weights={"bm25": 1, "dense": 0})
    assert hits[0].text == "Chargeback disputes go to the account team."
    assert len(hits) == 1  # only the rare word's chunk was a candidate
    monkeypatch.setattr(pg_search, "KEYWORD_CANDIDATES", 1000)  # a small KB ranks every match
    assert len(service.search(["big"], "account chargeback", k=3, weights={"bm25": 1, "dense": 0})) == 3


def test_when_every_word_is_common_the_candidates_hold_the_two_rarest(monkeypatch):
    service.create_kb("big")
    rows = "".join(f'{{"text": "the account page {i} shows the card balance"}}\n' for i in range(30))
    rows += "".join(f'{{"text": "an account note {i}"}}\n' for i in range(30))
    service.add_document("big", "rows.jsonl", rows.encode())
    monkeypatch.setattr(pg_search, "KEYWORD_CANDIDATES", 5)  # both "account" (60) and "card" (30) too common
    hits = service.search(["big"], "account card", k=40, weights={"bm25": 1, "dense": 0})
    assert len(hits) == 30 and all("card" in h.text for h in hits)


@pytest.mark.parametrize("query", ["it's", "a\\b 'x' | y & !z", "(x", "café", "<->"])
def test_query_text_is_data(query):
    service.create_kb("k")
    service.add_document("k", "a.txt", b"It's a cafe with x and y.")
    service.search(["k"], query, k=3)  # no tsquery syntax error, whatever the text
