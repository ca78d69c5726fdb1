"""Knowledge bases as one Python API: create, add documents, list, remove, search, reindex, evaluate."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from ladder.errors import Conflict, NotFound
from ladder.ids import new_id
from ladder.knowledge import index, pg_search
from ladder.knowledge.chunking import (
    DEFAULT_CHUNK_OVERLAP,
    DEFAULT_CHUNK_SIZE,
    check_settings,
)
from ladder.knowledge.embedder import Embedder, get_embedder
from ladder.knowledge.index import Hit
from ladder.knowledge.ingest import (
    Progress,
    add_document,
    add_files,
    embed_batches,
    embed_text,
)
from ladder.knowledge.records import (
    KB,
    AddResult,
    Doc,
    bump_generation,
    check_kb_name,
    delete_docs,
    doc_from_row,
    find_docs,
    find_kb,
    kb_from_row,
    vector_param,
)
from ladder.knowledge.rerank import Reranker
from ladder.store.blobs import delete_blob
from ladder.store.db import DEFAULT_PROJECT, get_db
from ladder.store.usage import UsageRecord, record

__all__ = [
    "KB",
    "Doc",
    "Hit",
    "AddResult",
    "create_kb",
    "get_kb",
    "list_kbs",
    "delete_kb",
    "add_document",
    "add_files",
    "list_docs",
    "remove_doc",
    "search",
    "reindex",
    "evaluate",
]


def create_kb(
    name: str,
    *,
    chunk_size: int | None = None,
    chunk_overlap: int | None = None,
    project_id: str = DEFAULT_PROJECT,
    embedder: Embedder | None = None,
) -> KB:
    check_kb_name(name)
    size = DEFAULT_CHUNK_SIZE if chunk_size is None else int(chunk_size)
    overlap = min(DEFAULT_CHUNK_OVERLAP, size // 2) if chunk_overlap is None else int(chunk_overlap)
    check_settings(size, overlap)
    emb = embedder or get_embedder()
    db = get_db()
    with db.tx() as conn:
        if conn.execute("SELECT 1 FROM kbs WHERE project_id=? AND name=?", (project_id, name)).fetchone():
            raise Conflict(f"a knowledge base named {name!r} already exists", param="name")
        kb_id = new_id("kb")
        num = conn.execute(
            "INSERT INTO kbs(id, project_id, name, num, chunk_size, chunk_overlap, embed_model, embed_dim,"
            " generation, created_at) VALUES (?,?,?,(SELECT COALESCE(MAX(num), 0) + 1 FROM kbs),?,?,?,?,0,?)"
            " RETURNING num",
            (kb_id, project_id, name, size, overlap, emb.name, emb.dim, time.time()),
        ).fetchone()[0]
        if db.engine == "postgresql":
            pg_search.create_vector_index(conn, kb_id, num, emb.dim)
    return get_kb(kb_id, project_id=project_id)


def get_kb(name_or_id: str | KB, *, project_id: str = DEFAULT_PROJECT) -> KB:
    db = get_db()
    kb = find_kb(db, name_or_id, project_id)
    counts = db.one(
        "SELECT (SELECT COUNT(*) FROM kb_docs WHERE kb_id=?) AS d, (SELECT COUNT(*) FROM kb_chunks WHERE kb_id=?) AS c",
        (kb.id, kb.id),
    )
    kb.docs, kb.chunks = counts["d"], counts["c"]
    return kb


def list_kbs(*, project_id: str = DEFAULT_PROJECT) -> list[KB]:
    rows = get_db().query(
        "SELECT k.*, (SELECT COUNT(*) FROM kb_docs d WHERE d.kb_id=k.id) AS n_docs,"
        " (SELECT COUNT(*) FROM kb_chunks c WHERE c.kb_id=k.id) AS n_chunks"
        " FROM kbs k WHERE project_id=? ORDER BY name",
        (project_id,),
    )
    return [kb_from_row(r, r["n_docs"], r["n_chunks"]) for r in rows]


def delete_kb(name_or_id: str | KB, *, project_id: str = DEFAULT_PROJECT) -> None:
    db = get_db()
    with db.tx() as conn:
        kb = find_kb(conn, name_or_id, project_id)
        doc_ids = [r[0] for r in conn.execute("SELECT id FROM kb_docs WHERE kb_id=?", (kb.id,))]
        blobs = delete_docs(conn, doc_ids)
        conn.execute("DELETE FROM kbs WHERE id=?", (kb.id,))
        if db.engine == "postgresql":
            pg_search.drop_vector_index(conn, kb.num)
    index.forget(db, kb.id)
    for blob in blobs:
        delete_blob(blob)


def list_docs(kb: str | KB, *, project_id: str = DEFAULT_PROJECT) -> list[Doc]:
    db = get_db()
    found = find_kb(db, kb, project_id)
    return [
        doc_from_row(r) for r in db.query("SELECT * FROM kb_docs WHERE kb_id=? ORDER BY created_at, name", (found.id,))
    ]


def remove_doc(kb: str | KB, doc_name_or_id: str, *, project_id: str = DEFAULT_PROJECT) -> int:
    """Remove a document (by id, name, or upload name: every row of a .csv); returns how many went."""
    db = get_db()
    with db.tx() as conn:
        found = find_kb(conn, kb, project_id)
        docs = find_docs(conn, found.id, doc_name_or_id)
        if not docs:
            raise NotFound(
                f"no document {doc_name_or_id!r} in knowledge base {found.name!r}; "
                f"`ladder kb docs {found.name}` lists them",
                param="doc",
            )
        blobs = delete_docs(conn, [d.id for d in docs])
        bump_generation(conn, found.id)
    for blob in blobs:
        delete_blob(blob)
    return len(docs)


def search(
    kb_names: list[str] | str,
    query: str,
    *,
    k: int = 5,
    threshold: float | None = None,
    filters: dict | None = None,
    weights: dict | None = None,
    project_id: str = DEFAULT_PROJECT,
    reranker: Reranker | None = None,
    embedder: Embedder | None = None,
) -> list[Hit]:
    """The k best chunks for the query across the KBs: BM25 and vectors fused by reciprocal rank.

    threshold: minimum cosine similarity of a chunk to the query. filters: exact match on document
    metadata keys. weights: {"bm25": w, "dense": w}, default 0.5 and 1.0.
    """
    from ladder.knowledge.retrieve import run_search

    return run_search(
        kb_names,
        query,
        k=k,
        threshold=threshold,
        filters=filters,
        weights=weights,
        project_id=project_id,
        reranker=reranker,
        embedder=embedder or get_embedder(),
    )


def reindex(
    kb: str | KB,
    *,
    project_id: str = DEFAULT_PROJECT,
    on_progress: Progress | None = None,
    embedder: Embedder | None = None,
) -> int:
    """Re-embed every chunk with the current embedder and record it on the KB; returns chunks embedded."""
    emb = embedder or get_embedder()
    db = get_db()
    found = find_kb(db, kb, project_id)
    rows = db.query("SELECT rowid, text, heading FROM kb_chunks WHERE kb_id=? ORDER BY rowid", (found.id,))
    start = time.perf_counter()
    vectors = (
        embed_batches(emb, [embed_text(r["text"], r["heading"]) for r in rows], on_progress)
        if rows
        else np.zeros((0, emb.dim), np.float32)
    )
    latency = (time.perf_counter() - start) * 1000
    with db.tx() as conn:
        find_kb(conn, found.id, project_id)
        if db.engine == "postgresql":
            pg_search.drop_vector_index(conn, found.num)
        conn.executemany(
            "UPDATE kb_chunks SET embedding=? WHERE rowid=?",
            [(vector_param(db.engine, vectors[i]), r["rowid"]) for i, r in enumerate(rows)],
        )
        # Chunks added meanwhile by another process with the old model would now be mixed: refuse.
        if conn.execute("SELECT COUNT(*) FROM kb_chunks WHERE kb_id=?", (found.id,)).fetchone()[0] > len(rows):
            raise Conflict(f"documents were added to {found.name!r} during the reindex; run it again")
        conn.execute(
            "UPDATE kbs SET embed_model=?, embed_dim=?, vectors_version = vectors_version + 1 WHERE id=?",
            (emb.name, emb.dim, found.id),
        )
        if db.engine == "postgresql":  # built again at once over the new vectors (and their dimension)
            pg_search.create_vector_index(conn, found.id, found.num, emb.dim)
        bump_generation(conn, found.id)
        if rows:
            record(
                UsageRecord(
                    model=emb.name,
                    kind="embed",
                    embedded_chunks=len(rows),
                    latency_ms=latency,
                    project_id=project_id,
                    source=found.id,
                )
            )
    return len(rows)


def evaluate(
    kb: str | KB,
    questions_path: str | Path,
    *,
    k: int = 5,
    project_id: str = DEFAULT_PROJECT,
    weights: dict | None = None,
    embedder: Embedder | None = None,
) -> dict:
    """recall@k, MRR and nDCG@10 over a JSONL of {"question", "doc" | "docs"} (names, sources or ids)."""
    from ladder.knowledge.evaluate import run_eval

    return run_eval(
        kb,
        Path(questions_path),
        k=k,
        project_id=project_id,
        weights=weights,
        embedder=embedder or get_embedder(),
    )
