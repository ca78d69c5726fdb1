"""Adding documents to a KB: parse (bounded), chunk, embed, then one transaction for chunks, index and vectors."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ladder.errors import Conflict, InvalidInput, NotFound, Stopped, TooLarge
from ladder.ids import new_id
from ladder.knowledge import keyword, pg_search
from ladder.knowledge.bounded import MAX_BYTES, parse_upload
from ladder.knowledge.budget import check_budget
from ladder.knowledge.chunking import Chunk, chunk_sections
from ladder.knowledge.embedder import BATCH_SIZE, Embedder, get_embedder
from ladder.knowledge.parsers import ParsedDoc
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
    emb = embedder or get_embedder()
    db = get_db()
    check = precheck(kb, filename, data, policy=policy, metadata=metadata, project_id=project_id, embedder=emb)
    if check.early is not None:
        return check.early
    chunked = chunk_upload(check.kb, check.name, check.data, text_column=text_column, embedder=emb)
    check_budget(check.name, len(chunked.texts), project_id, db)
    start = time.perf_counter()
    vectors = embed_batches(emb, chunked.texts, on_progress)
    latency = (time.perf_counter() - start) * 1000
    result, blobs = commit_upload(
        check, chunked, vectors, latency, policy=policy, metadata=metadata, project_id=project_id, embedder=emb
    )
    for blob in blobs:
        delete_blob(blob)
    return result


@dataclass
class Checked:
    """An upload that passed the checks made before parsing: its KB, display name, bytes and digest."""

    kb: KB
    name: str
    data: bytes
    digest: str
    early: AddResult | None = None  # "unchanged" or "skipped": nothing more to do


@dataclass
class Chunked:
    """An upload parsed and chunked: its format, (document, chunks) pairs and the texts to embed."""

    fmt: str
    docs: list[tuple[ParsedDoc, list[Chunk]]]
    skipped_rows: int
    texts: list[str]


def precheck(
    kb: str | KB,
    filename: str,
    data: bytes,
    *,
    policy: str,
    metadata: dict | None,
    project_id: str,
    embedder: Embedder,
) -> Checked:
    """The checks that need no parsing (policy, KB, embedder, same content, skip), made before any work."""
    if policy not in POLICIES:
        raise InvalidInput(f"policy {policy!r} must be one of {', '.join(POLICIES)}", param="policy")
    if not isinstance(data, bytes | bytearray | memoryview):
        raise InvalidInput(f"{filename}: the document must be bytes, got {type(data).__name__}", param="file")
    data = bytes(data)
    if metadata is not None and not isinstance(metadata, dict):
        raise InvalidInput("metadata must be a JSON object", param="metadata")
    db = get_db()
    found = find_kb(db, kb, project_id)
    check_model(found, embedder)
    name = files.display_name(filename if isinstance(filename, str) else str(filename))
    digest = hashlib.sha256(data).hexdigest()
    checked = Checked(found, name, data, digest)
    same = db.query("SELECT * FROM kb_docs WHERE kb_id=? AND source_sha256=?", (found.id, digest))
    if same:
        checked.early = AddResult(name, "unchanged", [doc_from_row(r) for r in same])
    elif policy == "skip" and db.one("SELECT 1 FROM kb_docs WHERE kb_id=? AND source=?", (found.id, name)):
        with db.snapshot() as conn:
            checked.early = AddResult(name, "skipped", find_docs(conn, found.id, name))
    return checked


def chunk_upload(kb: KB, name: str, data: bytes, *, text_column: str | None, embedder: Embedder) -> Chunked:
    """Parse (bounded) and chunk one upload; InvalidInput naming the file when it holds no text."""
    fmt, parsed = parse_upload(name, data, text_column=text_column)
    docs = [(p, chunk_sections(p.sections, kb.chunk_size, kb.chunk_overlap, embedder.count_tokens)) for p in parsed]
    skipped_rows = sum(1 for _, chunks in docs if not chunks)
    docs = [(p, chunks) for p, chunks in docs if chunks]
    if not docs:
        raise InvalidInput(f"{name}: no text found in the file", param="file")
    texts = [embed_text(c.text, c.heading) for _, chunks in docs for c in chunks]
    return Chunked(fmt, docs, skipped_rows, texts)


def commit_upload(
    checked: Checked,
    chunked: Chunked,
    vectors: np.ndarray,
    latency_ms: float,
    *,
    policy: str,
    metadata: dict | None,
    project_id: str,
    embedder: Embedder,
    file_id: str | None = None,
) -> tuple[AddResult, list[str]]:
    """Write the documents, chunks, index rows, vectors and usage row in one transaction.

    Joins the caller's open transaction (a queued ingest commits with its task's status). `file_id`:
    the upload already stored (a queued ingest's); None stores it here, inside the transaction.
    Returns the result and the blob ids of replaced documents, to delete once the transaction commits.
    """
    db = get_db()
    kb, name, data, digest = checked.kb, checked.name, checked.data, checked.digest
    created = None
    try:
        with db.tx() as conn:
            if file_id is None:
                # Inside the transaction: the upload record goes or stays with the documents.
                created = file_id = files.create(data, name, "knowledge", project_id=project_id, db=db).id
            if conn.execute("SELECT 1 FROM kb_docs WHERE kb_id=? AND source_sha256=?", (kb.id, digest)).fetchone():
                raise Conflict(f"{name}: the same content was added by another request just now")
            kb_now = find_kb(conn, kb.id, project_id)  # still there, still the same embedder
            check_model(kb_now, embedder)
            # Again under the write lock: another upload may have spent the budget while this one embedded.
            check_budget(name, len(chunked.texts), project_id, db)
            same_name = [r[0] for r in conn.execute("SELECT id FROM kb_docs WHERE kb_id=? AND source=?", (kb.id, name))]
            if same_name and policy == "skip":
                raise Conflict(f"{name}: a document of that name was added meanwhile and policy is skip", param="file")
            removed = same_name if policy == "replace" else []
            blobs = delete_docs(conn, removed)
            out = _insert_docs(conn, db.engine, kb, name, data, digest, file_id, chunked, vectors, metadata, project_id)
            if db.engine == "postgresql":
                pg_search.count_terms(conn, [d.id for d in out], 1)
            bump_generation(conn, kb.id)
            record(
                UsageRecord(
                    model=embedder.name,
                    kind="embed",
                    embedded_chunks=len(chunked.texts),
                    latency_ms=latency_ms,
                    project_id=project_id,
                    source=kb.id,
                )
            )
    except BaseException:
        if created:
            delete_blob(created)
        raise
    status = "replaced" if removed else "added"
    return AddResult(name, status, out, len(chunked.texts), len(removed), chunked.skipped_rows), blobs


def _insert_docs(conn, engine, kb, name, data, digest, file_id, chunked, vectors, metadata, project_id) -> list[Doc]:
    out, row, now = [], 0, time.time()
    for parsed_doc, chunks in chunked.docs:
        meta = {**parsed_doc.metadata, **(metadata or {})}
        doc = Doc(new_id("doc"), kb.id, parsed_doc.name, name, chunked.fmt, len(data), len(chunks), meta, now, file_id)
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
                chunked.fmt,
                len(data),
                len(chunks),
                json.dumps(meta, ensure_ascii=False, default=str),
                now,
            ),
        )
        rowids = next_rowids(conn, kb.id, len(chunks))
        if engine == "sqlite":
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
                    vector_param(engine, vectors[row + i]),
                    *lengths[i],
                )
                for i, c in enumerate(chunks)
            ],
        )
        row += len(chunks)
        out.append(doc)
    return out


def embed_batches(
    emb: Embedder,
    texts: list[str],
    on_progress: Progress | None,
    should_stop: Callable[[], bool] | None = None,
) -> np.ndarray:
    """Embed in batches, reporting after each; with `should_stop`, Stopped between batches when it says so."""
    parts, step = [], BATCH_SIZE * 4
    for i in range(0, len(texts), step):
        if should_stop is not None and should_stop():
            raise Stopped(f"embedding stopped after {i} of {len(texts)} chunks")
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
