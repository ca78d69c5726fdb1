"""KB service: add/replace/skip/keep, deletes visible at once (warm cache, restart, other process),
query text bound as data, safe file names, project isolation, model mismatch, usage ledger."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ladder.errors import Conflict, InvalidInput, NotFound
from ladder.knowledge import service
from ladder.store import usage
from ladder.store.db import get_db, reset_dbs
from tests.knowledge.conftest import HashEmbedder, make_pdf

pytestmark = pytest.mark.usefixtures("fake_embedder")

ZEBRA = b"Zebras graze on the savanna grass every morning."
OTTER = b"Otters float on their backs and hold hands while sleeping."


def texts(hits) -> list[str]:
    return [h.text for h in hits]


def test_add_search_and_policies():
    service.create_kb("kb1")
    assert service.add_document("kb1", "zoo.txt", ZEBRA).status == "added"
    assert service.add_document("kb1", "zoo.txt", ZEBRA).status == "unchanged"
    [hit] = service.search(["kb1"], "zebras grass", k=3)
    assert hit.doc_name == "zoo.txt" and hit.bm25_rank == 1 and hit.dense_rank == 1 and hit.kb == "kb1"

    assert service.add_document("kb1", "zoo.txt", OTTER, policy="skip").status == "skipped"
    assert texts(service.search(["kb1"], "zebras", k=3)) == [ZEBRA.decode()]

    r = service.add_document("kb1", "zoo.txt", OTTER)  # replace is the default
    assert (r.status, r.removed_docs) == ("replaced", 1)
    assert all("Zebras" not in t for t in texts(service.search(["kb1"], "zebras savanna", k=5)))

    assert service.add_document("kb1", "zoo.txt", ZEBRA, policy="keep").status == "added"
    assert len(service.list_docs("kb1")) == 2
    assert service.remove_doc("kb1", "zoo.txt") == 2  # the name removes every version
    assert service.search(["kb1"], "zebras otters", k=5) == []


def test_delete_is_never_returned_with_a_warm_cache_and_after_restart():
    service.create_kb("kb1")
    service.add_document("kb1", "a.txt", ZEBRA)
    service.add_document("kb1", "b.txt", OTTER)
    assert len(service.search(["kb1"], "zebras otters", k=5)) == 2  # warms the vector cache
    service.remove_doc("kb1", "a.txt")
    for weights in (None, {"bm25": 0, "dense": 1}, {"bm25": 1, "dense": 0}):
        assert texts(service.search(["kb1"], "zebras savanna grass", k=5, weights=weights)) in ([], [OTTER.decode()])
    reset_dbs()  # a new process: fresh connections, the database on disk
    assert "Zebras" not in " ".join(texts(service.search(["kb1"], "zebras savanna", k=5)))


def test_delete_by_another_process_is_seen_by_a_warm_cache(ladder_home: Path):
    service.create_kb("kb1")
    service.add_document("kb1", "a.txt", ZEBRA)
    service.add_document("kb1", "b.txt", OTTER)
    assert len(service.search(["kb1"], "zebras", k=5, weights={"bm25": 0, "dense": 1})) == 2
    env = {**os.environ, "LADDER_HOME": str(ladder_home)}
    subprocess.run(
        [sys.executable, "-c", "from ladder.knowledge import service; service.remove_doc('kb1', 'a.txt')"],
        env=env,
        check=True,
        timeout=120,
    )
    hits = service.search(["kb1"], "zebras savanna", k=5, weights={"bm25": 0, "dense": 1})
    assert texts(hits) == [OTTER.decode()]
    # The matrix itself was rebuilt from the new generation, not just filtered on the way out.
    from ladder.knowledge import index

    if get_db().engine == "sqlite":  # PostgreSQL keeps no matrix in memory: each search asks the index
        [matrix] = index.vector_cache(get_db()).matrices.values()
        assert len(matrix.rowids) == 1


def test_an_added_document_is_found_by_the_next_search_with_a_warm_cache():
    service.create_kb("kb1")
    service.add_document("kb1", "a.txt", ZEBRA)
    assert len(service.search(["kb1"], "otters", k=5, weights={"bm25": 0, "dense": 1})) == 1
    service.add_document("kb1", "b.txt", OTTER)
    hits = service.search(["kb1"], "otters float backs", k=5, weights={"bm25": 0, "dense": 1})
    assert hits[0].doc_name == "b.txt"


@pytest.mark.parametrize(
    "query",
    [
        'zebras"',
        '"zebras',
        "zebras OR",
        "OR",
        "NOT zebras",
        "zebras -grass",
        "-",
        "*",
        "zeb*",
        "NEAR(zebras grass)",
        "zebras AND",
        "(zebras",
        "text:zebras",
        "^zebras",
        "zebras; DROP TABLE kb_chunks;--",
        "'",
        "🦓 zebras",
        "Zébras",
        "\u0000zebras",
        "{zebras}",
        "zebras + grass",
        "a:b:c",
        "AND OR NOT",
    ],
)
def test_query_syntax_is_data(query):
    service.create_kb("kb1")
    service.add_document("kb1", "a.txt", ZEBRA)
    service.add_document("kb1", "b.txt", b"Text about or and not, near the colon: data.")
    hits = service.search(["kb1"], query, k=5)
    assert len(hits) <= 2
    assert len(service.list_docs("kb1")) == 2


def test_operators_in_query_do_not_change_its_meaning():
    service.create_kb("kb1")
    service.add_document("kb1", "a.txt", ZEBRA)
    service.add_document("kb1", "b.txt", OTTER)
    plain = service.search(["kb1"], "zebras otters", k=5, weights={"bm25": 1, "dense": 0})
    ops = service.search(["kb1"], "zebras NOT otters", k=5, weights={"bm25": 1, "dense": 0})
    assert {h.doc_name for h in plain} == {h.doc_name for h in ops} == {"a.txt", "b.txt"}


@pytest.mark.parametrize(
    "name", ["../../etc/passwd.txt", "/abs/path/notes.md", "a\x00b.txt", "résumé 📄.txt", "..\\..\\win.txt"]
)
def test_file_names_are_stored_safely_and_shown_as_given(name, ladder_home: Path):
    service.create_kb("kb1")
    result = service.add_document("kb1", name, ZEBRA)
    shown = name.replace("\x00", "")
    assert result.docs[0].name == shown
    assert service.search(["kb1"], "zebras", k=1)[0].doc_name == shown
    on_disk = [p for p in ladder_home.parent.rglob("*") if p.is_file()]
    assert all(ladder_home in p.parents for p in on_disk)
    assert not any(Path(shown).name in p.name for p in on_disk)


def test_bad_upload_leaves_nothing_behind(ladder_home: Path):
    service.create_kb("kb1")
    service.add_document("kb1", "a.txt", ZEBRA)
    before = sorted(p.name for p in (ladder_home / "blobs").rglob("*") if p.is_file())
    for name, data in [("e.txt", b""), ("x.pdf", b"%PDF-1.4 broken"), ("x.zip", b"PK")]:
        with pytest.raises(InvalidInput, match=name.replace(".", r"\.")):
            service.add_document("kb1", name, data)
    assert [d.name for d in service.list_docs("kb1")] == ["a.txt"]
    assert sorted(p.name for p in (ladder_home / "blobs").rglob("*") if p.is_file()) == before
    assert get_db().one("SELECT COUNT(*) FROM kb_chunks")[0] == 1


def test_pdf_pages_and_heading_reach_hits():
    service.create_kb("kb1")
    service.add_document("kb1", "p.pdf", make_pdf(["Intro page", "Refunds take five days"]))
    service.add_document("kb1", "g.md", b"# Guide\n\n## Shipping\n\nParcels arrive in two weeks.")
    [hit] = service.search(["kb1"], "refunds five days", k=1)
    assert (hit.doc_name, hit.page) == ("p.pdf", 2)
    [hit] = service.search(["kb1"], "parcels arrive", k=1)
    assert hit.heading == "Guide > Shipping"


def test_filters_threshold_and_rows():
    service.create_kb("kb1")
    csv = (
        b"question,answer,team\nHow do refunds work?,Refunds take five days.,billing\n"
        b"How do I log in?,Use the login page.,it\n"
    )
    r = service.add_document("kb1", "faq.csv", csv, text_column="question,answer", metadata={"lang": "en"})
    assert len(r.docs) == 2 and r.docs[0].metadata["lang"] == "en"
    hits = service.search(["kb1"], "refunds login", k=5, filters={"team": "it"})
    assert [h.metadata["team"] for h in hits] == ["it"]
    assert service.search(["kb1"], "refunds login", k=5, filters={"team": "none"}) == []
    assert service.search(["kb1"], "refunds login", k=5, filters={"row": 2})[0].metadata["row"] == 2
    assert all(h.similarity >= 0.5 for h in service.search(["kb1"], "refunds take five days", k=5, threshold=0.5))
    assert service.remove_doc("kb1", "faq.csv") == 2


def test_projects_do_not_see_each_other():
    service.create_kb("kb1", project_id="proj-default")
    service.add_document("kb1", "a.txt", ZEBRA)
    get_db().execute("INSERT INTO projects(id, name, created_at) VALUES ('proj-other', 'other', 0)")
    with pytest.raises(NotFound):
        service.search(["kb1"], "zebras", project_id="proj-other")
    with pytest.raises(NotFound):
        service.remove_doc("kb1", "a.txt", project_id="proj-other")
    assert service.list_kbs(project_id="proj-other") == []
    service.create_kb("kb1", project_id="proj-other")  # the same name is free in another project
    assert service.search(["kb1"], "zebras", project_id="proj-other") == []


def test_model_mismatch_is_reported_and_reindex_fixes_it():
    service.create_kb("kb1")
    service.add_document("kb1", "a.txt", ZEBRA)
    other = HashEmbedder("hash-32", 32)
    with pytest.raises(Conflict, match="ladder kb reindex kb1"):
        service.search(["kb1"], "zebras", embedder=other)
    with pytest.raises(Conflict):
        service.add_document("kb1", "b.txt", OTTER, embedder=other)
    assert service.reindex("kb1", embedder=other) == 1
    kb = service.get_kb("kb1")
    assert (kb.embed_model, kb.embed_dim) == ("hash-32", 32)
    assert texts(service.search(["kb1"], "zebras", embedder=other)) == [ZEBRA.decode()]


def test_every_embedded_chunk_is_metered():
    service.create_kb("kb1", chunk_size=16, chunk_overlap=0)
    r = service.add_document("kb1", "long.txt", b" ".join([ZEBRA] * 20))
    assert r.chunks > 1
    [row] = usage.summary(by="kind")
    assert (row["key"], row["embedded_chunks"]) == ("embed", r.chunks)


def test_bad_arguments():
    with pytest.raises(InvalidInput):
        service.create_kb("../bad")
    service.create_kb("kb1")
    with pytest.raises(Conflict):
        service.create_kb("kb1")
    with pytest.raises(InvalidInput, match="policy"):
        service.add_document("kb1", "a.txt", ZEBRA, policy="merge")
    for kwargs in ({"k": 0}, {"threshold": 2.0}, {"weights": {"bm25": 0, "dense": 0}}, {"weights": {"x": 1}}):
        with pytest.raises(InvalidInput):
            service.search(["kb1"], "zebras", **kwargs)
    with pytest.raises(InvalidInput, match="empty"):
        service.search(["kb1"], "   ")


def test_delete_kb_and_evaluate(tmp_path: Path):
    service.create_kb("kb1")
    service.add_document("kb1", "a.txt", ZEBRA)
    service.add_document("kb1", "b.txt", OTTER)
    q = tmp_path / "q.jsonl"
    q.write_text('{"question": "zebras grass", "doc": "a.txt"}\n{"question": "otters float", "docs": ["b.txt"]}\n')
    r = service.evaluate("kb1", q, k=1)
    assert (r["questions"], r["recall@1"], r["mrr"], r["ndcg@10"]) == (2, 1.0, 1.0, 1.0)
    q.write_text('{"question": "zebras"}\n')
    with pytest.raises(InvalidInput, match="q.jsonl: line 1"):
        service.evaluate("kb1", q)
    service.delete_kb("kb1")
    with pytest.raises(NotFound):
        service.search(["kb1"], "zebras")
    assert get_db().one("SELECT COUNT(*) FROM kb_chunks")[0] == 0
    if get_db().engine == "sqlite":  # the FTS5 rows go with their chunks (PostgreSQL's tsvector is a column)
        assert get_db().one("SELECT COUNT(*) FROM kb_fts")[0] == 0
    assert get_db().one("SELECT COUNT(*) FROM files")[0] == 0


def test_embed_and_meter_records_one_row_per_call(fake_embedder):
    from ladder.knowledge.embedder import embed_and_meter, get_embedder

    assert get_embedder() is fake_embedder
    vecs = embed_and_meter(["a b", "c"], project_id="proj-default", source="v1-embeddings")
    assert vecs.shape == (2, fake_embedder.dim)
    [row] = usage.summary(by="model")
    assert (row["key"], row["embedded_chunks"], row["calls"]) == ("hash-64", 2, 1)
