"""`bench/search_scale.py --database …` on PostgreSQL: hybrid search latency and HNSW recall at scale.

Per size: one KB filled by binary COPY with chunks of real sentences (the shared datasets; synthetic
words when absent) and synthetic clustered unit vectors (1,000 centres plus noise: MiniLM at 25
chunks/s would take 11 hours for 1M chunks), its HNSW index built after the load, then:
- hybrid search through the product's path (`service.search`, precomputed query vectors), p50/p95;
- the vector side alone (the HNSW query the search runs), p50/p95;
- HNSW recall@10 against exact search (the same query with index scans off), at the search's
  `hnsw.ef_search` (the depth a k=5 search asks for).
"""

from __future__ import annotations

import time

import numpy as np

CENTRES = 1000
NOISE = 0.6  # per-vector noise around its centre, relative to the centre's unit length
RECALL_QUERIES = 50


def clustered(n: int, rng: np.random.Generator, centres: np.ndarray) -> np.ndarray:
    own = centres[rng.integers(0, len(centres), n)]
    vecs = own + rng.standard_normal(own.shape).astype(np.float32) * (NOISE / np.sqrt(own.shape[1]))
    return vecs / np.linalg.norm(vecs, axis=1, keepdims=True)


def fill(kb, texts: list[str], vectors: np.ndarray) -> tuple[float, float]:
    """(COPY seconds, index build seconds)."""
    from pgvector.psycopg import register_vector

    from ladder.ids import new_id
    from ladder.knowledge import pg_search
    from ladder.knowledge.records import next_rowids
    from ladder.store.db import get_db

    db = get_db()
    per_doc = 10
    t0 = time.perf_counter()
    with db.tx() as conn:
        register_vector(conn.raw)
        pg_search.drop_vector_index(conn, kb.num)  # built once after the load: faster than row by row
        rowids = next_rowids(conn, kb.id, len(texts))
        docs = [new_id("doc") for _ in range(0, len(texts), per_doc)]
        with conn.raw.cursor().copy(
            "COPY kb_docs (id, kb_id, project_id, name, source, source_sha256, format, bytes, n_chunks,"
            " metadata, created_at) FROM STDIN"
        ) as copy:
            for d, doc_id in enumerate(docs):
                name = f"doc{d * per_doc}.txt"
                copy.write_row((doc_id, kb.id, "proj-default", name, name, f"sha{d}", "text", 0, per_doc, "{}", 0.0))
        with conn.raw.cursor().copy(
            "COPY kb_chunks (rowid, id, kb_id, doc_id, position, text, tokens, chunk_size, chunk_overlap,"
            " embedding) FROM STDIN WITH (FORMAT BINARY)"
        ) as copy:
            copy.set_types(["int8", "text", "text", "text", "int4", "text", "int4", "int4", "int4", "vector"])
            for i, text in enumerate(texts):
                copy.write_row(
                    (rowids[i], new_id("chunk"), kb.id, docs[i // per_doc], i % per_doc, text, 120, 200, 30, vectors[i])
                )
        pg_search.count_terms(conn, docs, 1)  # as ingest keeps them
        conn.execute("UPDATE kbs SET generation = generation + 1 WHERE id=?", (kb.id,))
    copy_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    with db.tx() as conn:
        conn.raw.execute("SET LOCAL maintenance_work_mem = '4GB'")
        conn.raw.execute("SET LOCAL max_parallel_maintenance_workers = 1")
        pg_search.create_vector_index(conn, kb.id, kb.num, vectors.shape[1])
    with db.tx() as conn:
        conn.raw.execute("ANALYZE kb_chunks")
    return copy_s, time.perf_counter() - t0


def vector_side(kb, qvecs: np.ndarray, k: int, ef: int, exact: bool) -> tuple[list[list[int]], list[float]]:
    """The search's HNSW query alone (or exact, index scans off): top-k rowids and ms per query."""
    from psycopg import sql

    from ladder.knowledge import pg_search
    from ladder.store.db import get_db

    db = get_db()
    found, lat = [], []
    stmt = sql.SQL(
        "SELECT rowid FROM kb_chunks WHERE kb_id = {} ORDER BY embedding::vector(384) <=> %s::vector(384) LIMIT %s"
    ).format(sql.Literal(kb.id))
    with db.snapshot() as conn:
        conn.raw.execute(sql.SQL("SET LOCAL hnsw.ef_search = {}").format(sql.Literal(ef)))
        if exact:
            conn.raw.execute("SET LOCAL enable_indexscan = off")
            conn.raw.execute("SET LOCAL enable_bitmapscan = off")
        for q in qvecs:
            t0 = time.perf_counter()
            rows = conn.raw.execute(stmt, [pg_search.vector_literal(q), k]).fetchall()
            lat.append((time.perf_counter() - t0) * 1000)
            found.append([r[0] for r in rows])
    return found, lat


def bench_size(size: int, n_queries: int, rng, texts: list[str], queries: list[str], meta_only) -> dict:
    from ladder.knowledge import fusion, pg_search, service

    centres = rng.standard_normal((CENTRES, 384)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    kb = service.create_kb(f"scale{size}", embedder=meta_only())
    copy_s, index_s = fill(kb, texts, clustered(size, rng, centres))
    qvecs = clustered(n_queries, rng, centres)
    fake = meta_only(dict(zip(queries, qvecs, strict=True)))
    service.search([kb.name], queries[0], k=5, embedder=fake)  # warms the connection pool
    lat = []
    for q in queries:
        t0 = time.perf_counter()
        service.search([kb.name], q, k=5, embedder=fake)
        lat.append((time.perf_counter() - t0) * 1000)
    ef = pg_search.ef_search_for(fusion.depth_for(5))
    approx, vlat = vector_side(kb, qvecs[:RECALL_QUERIES], 10, ef, exact=False)
    exact, elat = vector_side(kb, qvecs[:RECALL_QUERIES], 10, ef, exact=True)
    recall = float(np.mean([len(set(a) & set(e)) / 10 for a, e in zip(approx, exact, strict=True)]))
    return {
        "size": size,
        "copy_s": copy_s,
        "index_s": index_s,
        "p50": float(np.percentile(lat, 50)),
        "p95": float(np.percentile(lat, 95)),
        "vec_p50": float(np.percentile(vlat, 50)),
        "vec_p95": float(np.percentile(vlat, 95)),
        "exact_p50": float(np.percentile(elat, 50)),
        "ef": ef,
        "recall": recall,
    }


def report(rows: list[dict], n_queries: int) -> None:
    print(
        f"\nPostgreSQL {n_queries} hybrid searches, k=5 (pgvector HNSW + full-text search), wall ms; vectors:"
        f" synthetic, {CENTRES} clustered centres; recall@10 of HNSW vs exact over {RECALL_QUERIES} queries"
    )
    print(
        f"{'chunks':>8} {'COPY s':>7} {'index s':>8} {'hybrid p50':>11} {'hybrid p95':>11} {'HNSW p50':>9}"
        f" {'HNSW p95':>9} {'exact p50':>10} {'ef_search':>10} {'recall@10':>10}"
    )
    for r in rows:
        print(
            f"{r['size']:>8} {r['copy_s']:>7.1f} {r['index_s']:>8.1f} {r['p50']:>11.1f} {r['p95']:>11.1f}"
            f" {r['vec_p50']:>9.1f} {r['vec_p95']:>9.1f} {r['exact_p50']:>10.1f} {r['ef']:>10} {r['recall']:>10.3f}"
        )
