"""Hybrid retrieval on PostgreSQL: pgvector's HNSW index (cosine) and full-text search, fused by rank.

Each KB has its own HNSW index: a partial index over the KB's rows, on the embedding cast to the
KB's dimension (`vector` columns of mixed dimensions cannot be indexed whole). A search of a KB
therefore walks a graph of that KB's chunks only, and a small KB next to a large one still gets its
full top-k. Keyword ranks come from `ts_rank` over the generated `tsv` column (headings weighted A,
text B) with a GIN index; the words are the same ones the SQLite engine's BM25 uses.
"""

from __future__ import annotations

import re

import numpy as np
from psycopg import sql

from ladder.knowledge import fusion, keyword

_KB_ID = re.compile(r"kb-[A-Za-z0-9]+")
MAX_EF_SEARCH = 1000  # pgvector's limit for hnsw.ef_search
# HNSW candidate list of a search: ef_search 50 found 0.88 of the exact top 10 at 1M chunks, 200 finds
# more at a few milliseconds (bench/search_scale.py --database).
MIN_EF_SEARCH = 200
# Keyword candidates: the chunks holding the query's rarest lexemes, taking lexemes (rarest first) until
# they cover this many chunks. A KB smaller than this ranks every match; a larger one skips the chunks
# that hold only the query's common words, which BM25's IDF would rank low anyway. When even the rarest
# lexeme is held by more chunks than this, the candidates are the chunks holding the two rarest.
KEYWORD_CANDIDATES = 2000
# And at most this many candidates are ranked (the first found): a query whose every word is common
# (one word held by 100k of 1M chunks) would otherwise rank them all, for a second. BM25 gives such
# words almost no weight, so which of those chunks come first matters little.
KEYWORD_SCAN_LIMIT = 5000


def vector_literal(vec: np.ndarray) -> str:
    """A vector as pgvector's text form ("[0.1,0.2]"); psycopg sends it untyped, the column casts it."""
    return "[" + ",".join(f"{x:.8g}" for x in np.asarray(vec, dtype=np.float32).tolist()) + "]"


def _kb_literal(kb_id: str) -> sql.Literal:
    if not _KB_ID.fullmatch(kb_id):  # ids are generated; anything else is a bug, not user input
        raise ValueError(f"not a knowledge-base id: {kb_id!r}")
    return sql.Literal(kb_id)


def index_name(num: int) -> sql.Identifier:
    return sql.Identifier(f"kb_chunks_hnsw_{int(num)}")


def create_vector_index(conn, kb_id: str, num: int, dim: int) -> None:
    """The KB's HNSW index (built empty with the KB; pgvector keeps it current on every insert)."""
    stmt = sql.SQL(
        "CREATE INDEX {} ON kb_chunks USING hnsw ((embedding::vector({})) vector_cosine_ops) WHERE kb_id = {}"
    ).format(index_name(num), sql.Literal(int(dim)), _kb_literal(kb_id))
    conn.raw.execute(stmt)


def drop_vector_index(conn, num: int) -> None:
    conn.raw.execute(sql.SQL("DROP INDEX IF EXISTS {}").format(index_name(num)))


def tsquery_text(words: list[str], op: str = "|") -> str:
    """`'a' | 'b'` for to_tsquery: each word quoted (quotes and backslashes doubled), so user text is data."""
    return f" {op} ".join("'" + w.replace("\\", "\\\\").replace("'", "''") + "'" for w in words)


def count_terms(conn, doc_ids: list[str], sign: int) -> None:
    """Add (sign=1) or take away (sign=-1) the lexemes of these documents' chunks in kb_terms.

    Called in the transaction that inserts the chunks, or before the one that deletes them."""
    if not doc_ids:
        return
    conn.execute(
        "INSERT INTO kb_terms(kb_id, lexeme, df) SELECT c.kb_id, t.lexeme, ? * count(*)"
        " FROM kb_chunks c, unnest(c.tsv) t WHERE c.doc_id = ANY(?) GROUP BY c.kb_id, t.lexeme"
        " ON CONFLICT (kb_id, lexeme) DO UPDATE SET df = kb_terms.df + excluded.df",
        (sign, list(doc_ids)),
    )
    if sign < 0:
        conn.execute("DELETE FROM kb_terms WHERE df <= 0")


def ef_search_for(depth: int) -> int:
    return min(MAX_EF_SEARCH, max(MIN_EF_SEARCH, 2 * depth))


def _candidates(raw, kb_ids: list[str], words: list[str]) -> str | None:
    """The tsquery (of normalised lexemes) that picks the keyword candidates, or None when no chunk
    holds any of the query's lexemes. See KEYWORD_CANDIDATES."""
    rows = raw.execute(
        "SELECT t.lexeme, sum(t.df) AS df FROM kb_terms t"
        " WHERE t.kb_id = ANY(%s) AND t.lexeme IN (SELECT lexeme FROM unnest(to_tsvector('english', %s)))"
        " GROUP BY t.lexeme ORDER BY df, t.lexeme",
        [kb_ids, " ".join(words)],
    ).fetchall()
    if not rows:
        return None
    if rows[0][1] > KEYWORD_CANDIDATES and len(rows) > 1:
        return tsquery_text([r[0] for r in rows[:2]], op="&")
    chosen, covered = [], 0
    for lexeme, df in rows:
        if chosen and covered + df > KEYWORD_CANDIDATES:
            break
        chosen.append(lexeme)
        covered += df
    return tsquery_text(chosen)


def hybrid(
    conn,
    kbs: list[dict],
    query: str,
    qvec: np.ndarray,
    *,
    k: int,
    threshold: float | None,
    allowed_docs: set[str] | None,
    weights: tuple[float, float],
    depth: int | None = None,
) -> list[tuple[int, float, int | None, int | None, float]]:
    """(rowid, fused score, bm25 rank, dense rank, similarity) of the best chunks, best first.

    Runs inside the caller's snapshot (`db.snapshot()`), so both rankings see the same chunks.
    """
    wb, wd = weights
    depth = fusion.depth_for(k, depth)
    dim = int(kbs[0]["embed_dim"])
    qtext = vector_literal(qvec)
    doc_filter = sql.SQL(" AND doc_id = ANY(%s)") if allowed_docs is not None else sql.SQL("")
    doc_params = [sorted(allowed_docs)] if allowed_docs is not None else []
    raw = conn.raw

    dense: list[tuple[float, int]] = []
    sims: dict[int, float] = {}
    if wd > 0 or threshold is not None:
        raw.execute(sql.SQL("SET LOCAL hnsw.ef_search = {}").format(sql.Literal(ef_search_for(depth))))
        for kb in kbs:
            rows = raw.execute(
                sql.SQL(
                    "SELECT rowid, embedding::vector({dim}) <=> %s::vector({dim}) AS dist FROM kb_chunks"
                    " WHERE kb_id = {kb}{docs} ORDER BY dist LIMIT %s"
                ).format(dim=sql.Literal(dim), kb=_kb_literal(kb["id"]), docs=doc_filter),
                [qtext, *doc_params, depth],
            ).fetchall()
            for rowid, dist in rows:
                sims[rowid] = 1.0 - float(dist)
                dense.append((1.0 - float(dist), rowid))
    dense.sort(key=lambda t: (-t[0], t[1]))
    dense_rank = {rowid: r for r, (_, rowid) in enumerate(dense[:depth], start=1)} if wd > 0 else {}

    bm25_rank: dict[int, int] = {}
    words = keyword.query_words(query) if wb > 0 else []
    kb_ids = [kb["id"] for kb in kbs]
    candidates = _candidates(raw, kb_ids, words) if words else None
    if candidates:
        # Candidates hold one of the chosen lexemes (already normalised: 'simple' keeps them as they are);
        # they are ranked by the whole query.
        rows = raw.execute(
            sql.SQL(
                "SELECT s.rowid FROM (SELECT rowid, tsv FROM kb_chunks, to_tsquery('simple', %s) c"
                " WHERE kb_id = ANY(%s) AND tsv @@ c{docs} LIMIT %s) s, to_tsquery('english', %s) q"
                " ORDER BY ts_rank(s.tsv, q) DESC, s.rowid LIMIT %s"
            ).format(docs=doc_filter),
            [candidates, kb_ids, *doc_params, KEYWORD_SCAN_LIMIT, tsquery_text(words), depth],
        ).fetchall()
        bm25_rank = {row[0]: r for r, row in enumerate(rows, start=1)}

    missing = [rowid for rowid in bm25_rank if rowid not in sims]
    if not np.any(qvec):  # keyword-only: no query vector was made, similarity stays 0
        sims = dict.fromkeys(bm25_rank, 0.0)
    elif missing:
        rows = raw.execute(
            sql.SQL(
                "SELECT rowid, embedding::vector({dim}) <=> %s::vector({dim}) FROM kb_chunks WHERE rowid = ANY(%s)"
            ).format(dim=sql.Literal(dim)),
            [qtext, missing],
        ).fetchall()
        sims.update({rowid: 1.0 - float(dist) for rowid, dist in rows})
    return fusion.fuse(bm25_rank, dense_rank, lambda rowid: sims.get(rowid, float("-inf")), weights, threshold)
