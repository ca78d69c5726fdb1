"""One search over one or more KBs of a project inside one read snapshot of the database."""

from __future__ import annotations

import json

import numpy as np

from ladder.errors import Conflict, InvalidInput
from ladder.knowledge import index, keyword, pg_search
from ladder.knowledge.embedder import Embedder
from ladder.knowledge.index import Hit
from ladder.knowledge.records import find_kb
from ladder.knowledge.rerank import Reranker
from ladder.store.db import get_db

MAX_K = 100
MAX_QUERY_CHARS = 4000


def _check(query: str, k: int, threshold: float | None, filters: dict | None) -> None:
    if not isinstance(query, str) or not query.strip():
        raise InvalidInput("the query is empty", param="query")
    if len(query) > MAX_QUERY_CHARS:
        raise InvalidInput(f"the query has {len(query)} characters; the limit is {MAX_QUERY_CHARS}", param="query")
    if not isinstance(k, int) or not 1 <= k <= MAX_K:
        raise InvalidInput(f"k must be an integer from 1 to {MAX_K}", param="k")
    if threshold is not None and not -1.0 <= float(threshold) <= 1.0:
        raise InvalidInput("threshold is a cosine similarity between -1 and 1", param="threshold")
    if filters is not None and not isinstance(filters, dict):
        raise InvalidInput("filters must be an object of metadata key -> value", param="filters")


def _matches(meta: dict, filters: dict) -> bool:
    # Exact match; numbers and strings compare by their text so "3" from a CLI finds 3 from a CSV.
    for key, want in filters.items():
        if key not in meta:
            return False
        have = meta[key]
        if have != want and str(have) != str(want):
            return False
    return True


def run_search(
    kb_names: list[str] | str,
    query: str,
    *,
    k: int,
    threshold: float | None,
    filters: dict | None,
    weights: dict | None,
    project_id: str,
    reranker: Reranker | None,
    embedder: Embedder,
) -> list[Hit]:
    names = [kb_names] if isinstance(kb_names, str) else list(kb_names)
    if not names:
        raise InvalidInput("name at least one knowledge base to search", param="kb")
    _check(query, k, threshold, filters)
    wts = index.parse_weights(weights)
    # Embedded before the snapshot opens, so the read transaction stays short.
    # Keyword-only needs no model run (similarity then stays 0).
    keyword_only = wts[1] == 0 and threshold is None
    qvec = np.zeros(embedder.dim, dtype=np.float32) if keyword_only else embedder.embed([query])[0]
    db = get_db()
    if wts[0] > 0 and db.engine == "sqlite":
        keyword.fill_lengths(db)  # chunks from before FTS lengths were stored: counted once, before the snapshot
    # One snapshot: generation, vectors, keyword index and texts agree.
    with db.snapshot() as conn:
        kbs = []
        for name in dict.fromkeys(names):
            kb = find_kb(conn, name, project_id)
            if kb.embed_model != embedder.name or kb.embed_dim != embedder.dim:
                raise Conflict(
                    f"knowledge base {kb.name!r} was embedded with {kb.embed_model} but the embedder "
                    f"now is {embedder.name}; run `ladder kb reindex {kb.name}`",
                    code="embedding_model_mismatch",
                )
            kbs.append(
                {
                    "id": kb.id,
                    "name": kb.name,
                    "num": kb.num,
                    "generation": kb.generation,
                    "vectors_version": kb.vectors_version,
                    "embed_dim": kb.embed_dim,
                }
            )
        allowed = None
        if filters:
            marks = ",".join("?" * len(kbs))
            rows = conn.execute(
                f"SELECT id, metadata FROM kb_docs WHERE kb_id IN ({marks})", [kb["id"] for kb in kbs]
            ).fetchall()
            allowed = {r[0] for r in rows if _matches(json.loads(r[1]), filters)}
        args = dict(k=k, threshold=threshold, allowed_docs=allowed, weights=wts)
        if db.engine == "postgresql":
            ranked = pg_search.hybrid(conn, kbs, query, qvec, **args)
        else:
            ranked = index.hybrid(conn, db, kbs, query, qvec, **args)
        keep = ranked[: max(k, 4 * k if reranker else k)]
        hits = _load_hits(conn, keep, {kb["id"]: kb["name"] for kb in kbs})
    if reranker is not None:
        hits = reranker.rerank(query, hits)
    return hits[:k]


def _load_hits(conn, ranked: list[tuple], kb_names: dict[str, str]) -> list[Hit]:
    if not ranked:
        return []
    marks = ",".join("?" * len(ranked))
    rows = conn.execute(
        "SELECT c.rowid, c.id, c.doc_id, c.kb_id, c.text, c.page, c.heading, c.position, d.name, d.metadata"
        f" FROM kb_chunks c JOIN kb_docs d ON d.id = c.doc_id WHERE c.rowid IN ({marks})",
        [r[0] for r in ranked],
    ).fetchall()
    by_rowid = {r[0]: r for r in rows}
    hits = []
    for rowid, score, br, dr, sim in ranked:
        r = by_rowid.get(rowid)
        if r is None:  # gone since the candidates were taken: never return it
            continue
        hits.append(
            Hit(
                r[1],
                r[2],
                r[8],
                r[4],
                r[5],
                r[6],
                r[7],
                score,
                br,
                dr,
                json.loads(r[9]),
                kb_names.get(r[3], ""),
                sim,
            )
        )
    return hits
