"""Knowledge bases as one Python API: create, add documents, list, remove, search, reindex, evaluate."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from ladder.errors import Conflict, InvalidInput, NotFound
from ladder.ids import new_id
from ladder.knowledge import index
from ladder.knowledge.bounded import parse_upload
from ladder.knowledge.chunking import (
    DEFAULT_CHUNK_OVERLAP,
    DEFAULT_CHUNK_SIZE,
    check_settings,
    chunk_sections,
)
from ladder.knowledge.embedder import BATCH_SIZE, Embedder, get_embedder
from ladder.knowledge.index import Hit
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
    next_rowids,
)
from ladder.knowledge.rerank import Reranker
from ladder.store import files
from ladder.store.blobs import delete_blob
from ladder.store.db import DEFAULT_PROJECT, get_db
from ladder.store.usage import UsageRecord, record

POLICIES = ("skip", "replace", "keep")
Progress = Callable[[int, int], None]  # (chunks embedded so far, chunks in this upload)

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
        conn.execute(
            "INSERT INTO kbs(id, project_id, name, num, chunk_size, chunk_overlap, embed_model, embed_dim,"
            " generation, created_at) VALUES (?,?,?,(SELECT COALESCE(MAX(num), 0) + 1 FROM kbs),?,?,?,?,0,?)",
            (kb_id, project_id, name, size, overlap, emb.name, emb.dim, time.time()),
        )
    return get_kb(kb_id, project_id=project_id)


def get_kb(name_or_id: str | KB, *, project_id: str = DEFAULT_PROJECT) -> KB:
    db = get_db()
    kb = find_kb(db, name_or_id, project_id)
    counts = db.one(
        "SELECT (SELECT COUNT(*) FROM kb_docs WHERE kb_id=:k) AS d,"
        " (SELECT COUNT(*) FROM kb_chunks WHERE kb_id=:k) AS c",
        {"k": kb.id},
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
    index.forget(str(db.path), kb.id)
    for blob in blobs:
        delete_blob(blob)


def _check_model(kb: KB, emb: Embedder) -> None:
    if kb.embed_model != emb.name or kb.embed_dim != emb.dim:
        raise Conflict(
            f"knowledge base {kb.name!r} was embedded with {kb.embed_model} ({kb.embed_dim} dims) but "
            f"the embedder now is {emb.name} ({emb.dim} dims); run `ladder kb reindex {kb.name}` "
            "to re-embed it",
            code="embedding_model_mismatch",
        )


def _embed_text(text: str, heading: str | None) -> str:
    # The heading path says what a chunk is about when its own words do not ("Refunds > Timing").
    return f"{heading}\n{text}" if heading else text


def add_document(
    kb: str | KB,
    filename: str,
    data: bytes,
    *,
    policy: str = "replace",
    metadata: dict | None = None,
    text_column: str | None = None,
    project_id: str = DEFAULT_PROJECT,
    on_progress: Progress | None = None,
    embedder: Embedder | None = None,
) -> AddResult:
    """Parse, chunk, embed and index one upload; searchable as soon as this returns.

    Same content already in the KB: a no-op ("unchanged"). Same name, other content: `policy` decides
    (skip: keep the old one; replace: the old one goes in the same transaction; keep: both stay).
    """
    if policy not in POLICIES:
        raise InvalidInput(f"policy {policy!r} must be one of {', '.join(POLICIES)}", param="policy")
    if metadata is not None and not isinstance(metadata, dict):
        raise InvalidInput("metadata must be a JSON object", param="metadata")
    emb = embedder or get_embedder()
    db = get_db()
    kb = find_kb(db, kb, project_id)
    _check_model(kb, emb)
    name = files.display_name(filename if isinstance(filename, str) else str(filename))
    digest = hashlib.sha256(data).hexdigest()
    conn = db.connect()
    same = conn.execute("SELECT * FROM kb_docs WHERE kb_id=? AND source_sha256=?", (kb.id, digest)).fetchall()
    if same:
        return AddResult(name, "unchanged", [doc_from_row(r) for r in same])
    existing = conn.execute("SELECT id FROM kb_docs WHERE kb_id=? AND source=?", (kb.id, name)).fetchall()
    if existing and policy == "skip":
        return AddResult(name, "skipped", find_docs(conn, kb.id, name))

    fmt, parsed = parse_upload(name, data, text_column=text_column)
    docs = [(p, chunk_sections(p.sections, kb.chunk_size, kb.chunk_overlap, emb.count_tokens)) for p in parsed]
    skipped_rows = sum(1 for _, chunks in docs if not chunks)
    docs = [(p, chunks) for p, chunks in docs if chunks]
    if not docs:
        raise InvalidInput(f"{name}: no text found in the file", param="file")
    texts = [_embed_text(c.text, c.heading) for _, chunks in docs for c in chunks]
    start = time.perf_counter()
    vectors = _embed_batches(emb, texts, on_progress)
    latency = (time.perf_counter() - start) * 1000

    file_id = None
    try:
        with db.tx() as conn:
            # Inside the transaction: the upload record goes or stays with the documents.
            file_id = files.create(data, name, "knowledge", project_id=project_id, db=db).id
            if conn.execute("SELECT 1 FROM kb_docs WHERE kb_id=? AND source_sha256=?", (kb.id, digest)).fetchone():
                raise Conflict(f"{name}: the same content was added by another request just now")
            kb_now = find_kb(conn, kb.id, project_id)  # still there, still the same embedder
            _check_model(kb_now, emb)
            removed = []
            if policy == "replace":
                removed = [
                    r[0] for r in conn.execute("SELECT id FROM kb_docs WHERE kb_id=? AND source=?", (kb.id, name))
                ]
            blobs = delete_docs(conn, removed)
            out, row, now = [], 0, time.time()
            for parsed_doc, chunks in docs:
                meta = {**parsed_doc.metadata, **(metadata or {})}
                doc = Doc(
                    new_id("doc"),
                    kb.id,
                    parsed_doc.name,
                    name,
                    fmt,
                    len(data),
                    len(chunks),
                    meta,
                    now,
                    file_id,
                )
                conn.execute(
                    "INSERT INTO kb_docs(id, kb_id, project_id, name, source, source_sha256, file_id,"
                    " format, bytes, n_chunks, metadata, created_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                    (
                        doc.id,
                        kb.id,
                        project_id,
                        doc.name,
                        name,
                        digest,
                        file_id,
                        fmt,
                        len(data),
                        len(chunks),
                        json.dumps(meta, ensure_ascii=False, default=str),
                        now,
                    ),
                )
                rowids = next_rowids(conn, kb.id, len(chunks))
                conn.executemany(
                    "INSERT INTO kb_chunks(rowid, id, kb_id, doc_id, position, text, heading, page, tokens,"
                    " chunk_size, chunk_overlap, embedding) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                    [
                        (
                            rowids[i],
                            new_id("chunk"),
                            kb.id,
                            doc.id,
                            c.position,
                            c.text,
                            c.heading,
                            c.page,
                            c.tokens,
                            kb.chunk_size,
                            kb.chunk_overlap,
                            vectors[row + i].tobytes(),
                        )
                        for i, c in enumerate(chunks)
                    ],
                )
                row += len(chunks)
                out.append(doc)
            bump_generation(conn, kb.id)
            record(
                UsageRecord(
                    model=emb.name,
                    kind="embed",
                    embedded_chunks=len(texts),
                    latency_ms=latency,
                    project_id=project_id,
                    source=kb.id,
                )
            )
    except BaseException:
        if file_id:
            delete_blob(file_id)
        raise
    for blob in blobs:
        delete_blob(blob)
    status = "replaced" if removed else "added"
    return AddResult(name, status, out, len(texts), len(removed), skipped_rows)


def _embed_batches(emb: Embedder, texts: list[str], on_progress: Progress | None) -> np.ndarray:
    parts, step = [], BATCH_SIZE * 4
    for i in range(0, len(texts), step):
        parts.append(emb.embed(texts[i : i + step]))
        if on_progress:
            on_progress(min(i + step, len(texts)), len(texts))
    return np.concatenate(parts).astype(np.float32, copy=False)


def add_files(
    kb: str | KB,
    paths: Iterable[str | Path],
    *,
    policy: str = "replace",
    metadata: dict | None = None,
    text_column: str | None = None,
    project_id: str = DEFAULT_PROJECT,
    on_progress: Progress | None = None,
    embedder: Embedder | None = None,
) -> list[AddResult]:
    """Add files from disk, each in its own transaction; stops at the first bad file (earlier ones stay)."""
    results = []
    for path in paths:
        path = Path(path)
        if not path.is_file():
            raise NotFound(f"{path}: no such file", param="file")
        results.append(
            add_document(
                kb,
                path.name,
                path.read_bytes(),
                policy=policy,
                metadata=metadata,
                text_column=text_column,
                project_id=project_id,
                on_progress=on_progress,
                embedder=embedder,
            )
        )
    return results


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
        _embed_batches(emb, [_embed_text(r["text"], r["heading"]) for r in rows], on_progress)
        if rows
        else np.zeros((0, emb.dim), np.float32)
    )
    latency = (time.perf_counter() - start) * 1000
    with db.tx() as conn:
        find_kb(conn, found.id, project_id)
        conn.executemany(
            "UPDATE kb_chunks SET embedding=? WHERE rowid=?",
            [(vectors[i].tobytes(), r["rowid"]) for i, r in enumerate(rows)],
        )
        # Chunks added meanwhile by another process with the old model would now be mixed: refuse.
        if conn.execute("SELECT COUNT(*) FROM kb_chunks WHERE kb_id=?", (found.id,)).fetchone()[0] > len(rows):
            raise Conflict(f"documents were added to {found.name!r} during the reindex; run it again")
        conn.execute("UPDATE kbs SET embed_model=?, embed_dim=? WHERE id=?", (emb.name, emb.dim, found.id))
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
