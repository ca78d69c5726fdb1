"""Adding documents to a KB: parse (bounded), chunk, embed, then one transaction for chunks, index and vectors."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from ladder.errors import Conflict, InvalidInput, NotFound, TooLarge
from ladder.ids import new_id
from ladder.knowledge import keyword, pg_search
from ladder.knowledge.bounded import MAX_BYTES, parse_upload
from ladder.knowledge.budget import check_budget
from ladder.knowledge.chunking import chunk_sections
from ladder.knowledge.embedder import BATCH_SIZE, Embedder, get_embedder
from ladder.knowledge.records import (
    KB,
    AddResult,
    Doc,
    bump_generation,
    delete_docs,
    doc_from_row,
    find_docs,
    find_kb,
    next_rowids,
    vector_param,
)
from ladder.store import files
from ladder.store.blobs import delete_blob
from ladder.store.db import DEFAULT_PROJECT, get_db
from ladder.store.usage import UsageRecord, record

POLICIES = ("skip", "replace", "keep")
Progress = Callable[[int, int], None]  # (chunks embedded so far, chunks in this upload)


def check_model(kb: KB, emb: Embedder) -> None:
    if kb.embed_model != emb.name or kb.embed_dim != emb.dim:
        raise Conflict(
            f"knowledge base {kb.name!r} was embedded with {kb.embed_model} ({kb.embed_dim} dims) but "
            f"the embedder now is {emb.name} ({emb.dim} dims); run `ladder kb reindex {kb.name}` "
            "to re-embed it",
            code="embedding_model_mismatch",
        )


def embed_text(text: str, heading: str | None) -> str:
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
    if not isinstance(data, bytes | bytearray | memoryview):
        raise InvalidInput(f"{filename}: the document must be bytes, got {type(data).__name__}", param="file")
    data = bytes(data)
    if metadata is not None and not isinstance(metadata, dict):
        raise InvalidInput("metadata must be a JSON object", param="metadata")
    emb = embedder or get_embedder()
    db = get_db()
    kb = find_kb(db, kb, project_id)
    check_model(kb, emb)
    name = files.display_name(filename if isinstance(filename, str) else str(filename))
    digest = hashlib.sha256(data).hexdigest()
    same = db.query("SELECT * FROM kb_docs WHERE kb_id=? AND source_sha256=?", (kb.id, digest))
    if same:
        return AddResult(name, "unchanged", [doc_from_row(r) for r in same])
    existing = db.query("SELECT id FROM kb_docs WHERE kb_id=? AND source=?", (kb.id, name))
    if existing and policy == "skip":
        with db.snapshot() as conn:
            return AddResult(name, "skipped", find_docs(conn, kb.id, name))

    fmt, parsed = parse_upload(name, data, text_column=text_column)
    docs = [(p, chunk_sections(p.sections, kb.chunk_size, kb.chunk_overlap, emb.count_tokens)) for p in parsed]
    skipped_rows = sum(1 for _, chunks in docs if not chunks)
    docs = [(p, chunks) for p, chunks in docs if chunks]
    if not docs:
        raise InvalidInput(f"{name}: no text found in the file", param="file")
    check_budget(name, sum(len(chunks) for _, chunks in docs), project_id, db)
    texts = [embed_text(c.text, c.heading) for _, chunks in docs for c in chunks]
    start = time.perf_counter()
    vectors = embed_batches(emb, texts, on_progress)
    latency = (time.perf_counter() - start) * 1000

    file_id = None
    try:
        with db.tx() as conn:
            # Inside the transaction: the upload record goes or stays with the documents.
            file_id = files.create(data, name, "knowledge", project_id=project_id, db=db).id
            if conn.execute("SELECT 1 FROM kb_docs WHERE kb_id=? AND source_sha256=?", (kb.id, digest)).fetchone():
                raise Conflict(f"{name}: the same content was added by another request just now")
            kb_now = find_kb(conn, kb.id, project_id)  # still there, still the same embedder
            check_model(kb_now, emb)
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
                if db.engine == "sqlite":
                    # bm25()'s column sizes, counted by kb_fts's tokenizer (keyword search reads them here)
                    lengths = keyword.fts_lengths(conn, [(c.text, c.heading) for c in chunks])
                    cols, marks = ", fts_text_len, fts_heading_len", ",?,?"
                else:  # PostgreSQL's full-text search keeps its own lengths in the tsvector
                    lengths, cols, marks = [()] * len(chunks), "", ""
                conn.executemany(
                    "INSERT INTO kb_chunks(rowid, id, kb_id, doc_id, position, text, heading, page, tokens,"
                    f" chunk_size, chunk_overlap, embedding{cols}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?{marks})",
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
                            vector_param(db.engine, vectors[row + i]),
                            *lengths[i],
                        )
                        for i, c in enumerate(chunks)
                    ],
                )
                row += len(chunks)
                out.append(doc)
            if db.engine == "postgresql":
                pg_search.count_terms(conn, [d.id for d in out], 1)
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


def embed_batches(emb: Embedder, texts: list[str], on_progress: Progress | None) -> np.ndarray:
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
                read_bounded(path),
                policy=policy,
                metadata=metadata,
                text_column=text_column,
                project_id=project_id,
                on_progress=on_progress,
                embedder=embedder,
            )
        )
    return results


def read_bounded(path: Path) -> bytes:
    """A document's bytes, its size checked first (a 2 GB file is refused, not read)."""
    size = path.stat().st_size
    if size > MAX_BYTES:
        raise TooLarge(
            f"{path}: {size:,} bytes is over the size limit of {MAX_BYTES:,} bytes (LADDER_KB_MAX_BYTES)",
            param="file",
        )
    with open(path, "rb") as f:
        return f.read(MAX_BYTES + 1)  # a file that grew since the check is still refused by parse_upload
