"""After a document operation the cached vector matrix and keyword postings are patched with the
rows added and removed, and then equal what a process starting cold would read."""

from __future__ import annotations

import numpy as np
import pytest

from ladder.knowledge import delta, index, keyword, service
from ladder.store.db import get_db
from tests.knowledge.conftest import HashEmbedder

pytestmark = [pytest.mark.usefixtures("fake_embedder"), pytest.mark.sqlite_only]

WORDS = ["zebra", "otter", "heron", "lynx", "badger", "falcon", "walrus", "bison", "lemur", "gecko"]


def doc(i: int) -> bytes:
    """A document of a few paragraphs whose words differ from document to document."""
    paras = [" ".join(WORDS[(i + j + k) % len(WORDS)] for k in range(6 + j)) + "." for j in range(4)]
    return "\n\n".join([f"Document number {i}.", *paras]).encode()


def cached(kb_id: str):
    return index.vector_cache(get_db()).matrices[kb_id], keyword._cache(get_db()).kbs[kb_id]


def cold(kb_id: str):
    """What a fresh process would load for the KB now."""
    index.forget(get_db(), kb_id)
    service.search(["kb1"], "zebra heron", k=5)
    return cached(kb_id)


def test_a_change_patches_the_caches_and_they_equal_a_fresh_load(monkeypatch):
    kb = service.create_kb("kb1")
    for i in range(40):
        service.add_document("kb1", f"d{i}.txt", doc(i))
    queries = ["zebra heron", "otter lynx badger", "walrus", "gecko bison falcon"]
    for q in queries:
        service.search(["kb1"], q, k=5)  # warms the matrix and the postings of these words
    read: list[int] = []  # rows read from kb_chunks per matrix load
    real = index._arrays
    monkeypatch.setattr(index, "_arrays", lambda rows, dim: read.append(len(rows)) or real(rows, dim))

    for change in (
        lambda: service.remove_doc("kb1", "d3.txt"),
        lambda: service.add_document("kb1", "d0.txt", doc(100)),  # a replace: old rows out, new rows in
        lambda: service.add_document("kb1", "new.txt", doc(101)),
    ):
        change()
        service.search(["kb1"], "zebra heron", k=5)
    matrix, terms = cached(kb.id)
    assert read == [0, 1, 1]  # only the added rows were read, never the whole KB
    assert set(terms._postings) >= {"zebra", "heron"}  # carried over, not dropped
    hits = {q: [h.chunk_id for h in service.search(["kb1"], q, k=5)] for q in queries}

    fresh_matrix, fresh_terms = cold(kb.id)
    assert not matrix.alive.all()  # the removed rows are still there, marked dead
    live = matrix.alive
    np.testing.assert_array_equal(matrix.rowids[live], fresh_matrix.rowids)
    np.testing.assert_array_equal(matrix.doc_ids[live], fresh_matrix.doc_ids)
    np.testing.assert_array_equal(matrix.vectors[live], fresh_matrix.vectors)
    live_rows = np.setdiff1d(np.arange(len(terms.rowids)), terms.dead)
    np.testing.assert_array_equal(terms.rowids[live_rows], fresh_terms.rowids)
    np.testing.assert_array_equal(terms.lengths[live_rows], fresh_terms.lengths)
    for term, (rows, tf) in terms._postings.items():
        fresh_rows, fresh_tf = fresh_terms.postings(get_db().connect(), keyword._cache(get_db()), term)
        keep = ~np.isin(rows, terms.dead)
        np.testing.assert_array_equal(terms.rowids[rows[keep]], fresh_terms.rowids[fresh_rows])
        np.testing.assert_array_equal(tf[keep], fresh_tf)
    assert {q: [h.chunk_id for h in service.search(["kb1"], q, k=5)] for q in queries} == hits


def test_new_rows_append_in_place_while_an_older_matrix_stays_valid():
    kb = service.create_kb("kb1")
    for i in range(30):
        service.add_document("kb1", f"d{i}.txt", doc(i))
    service.search(["kb1"], "zebra", k=5)
    old, _ = cached(kb.id)
    before = old.vectors.copy()
    service.add_document("kb1", "new.txt", doc(100))
    service.search(["kb1"], "zebra", k=5)
    new, _ = cached(kb.id)
    assert new.store is old.store and len(new.rowids) == len(old.rowids) + 1  # no copy of the matrix
    np.testing.assert_array_equal(old.vectors, before)  # what an older search sees did not move
    service.add_document("kb1", "other.txt", doc(101))
    # patched again from the older matrix (as a search on an older snapshot would): a new buffer
    index.vector_cache(get_db()).matrices[kb.id] = old
    service.search(["kb1"], "zebra", k=5)
    newest, _ = cached(kb.id)
    assert newest.store is not old.store and len(newest.rowids) == len(old.rowids) + 2
    np.testing.assert_array_equal(newest.vectors[: len(old.rowids)], before)


def test_a_reindex_reloads_the_matrix_whole():
    kb = service.create_kb("kb1")
    service.add_document("kb1", "a.txt", doc(1))
    service.search(["kb1"], "zebra", k=5)
    before = cached(kb.id)[0].vectors.copy()
    other = HashEmbedder(name="hash-64-b")
    other.embed = lambda texts: -HashEmbedder.embed(other, texts)  # same rows, different vectors
    service.reindex("kb1", embedder=other)
    service.search(["kb1"], "zebra", k=5, embedder=other)
    np.testing.assert_array_equal(cached(kb.id)[0].vectors, -before)


def test_row_delta_patches_small_appending_changes_only():
    cached_rows = np.arange(100, dtype=np.int64)
    change = delta.row_delta(cached_rows, np.r_[cached_rows[cached_rows != 5], [100, 101]])
    assert change is not None and not change.keep[5] and change.keep.sum() == 99
    assert change.added.tolist() == [100, 101]
    assert delta.row_delta(cached_rows, np.arange(60, dtype=np.int64)) is None  # 40% removed: reload
    assert delta.row_delta(cached_rows[::2], np.arange(100, dtype=np.int64)) is None  # rows between old ones
