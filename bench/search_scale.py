"""Knowledge-base speed: ingest throughput, hybrid query latency at 10k/100k chunks, FTS5 vs rank_bm25.

- ingest: real MiniLM embedding of synthetic ~150-token chunks through `add_document` (chunks/s).
- scale: synthetic chunks (Zipf-distributed words, random unit vectors) written straight into the
  KB tables; then hybrid searches through the product's search path, with precomputed query vectors
  (retrieval only) and with the real MiniLM embedding the query (end to end).
- keyword: the product's keyword search (BM25 from FTS5's postings, cold and warm; per query p50/p95
  and whether its top 50 equals FTS5's), FTS5's own `ORDER BY bm25()` and `rank_bm25.BM25Okapi`
  (get_scores + top 50) on the same corpus and the same query words, side by side, and the speed
  ratios; and the one-time count of the FTS lengths of a KB written before they were stored.
Run: .venv/bin/python bench/search_scale.py [--sizes 10000 100000] [--queries 200] [--database pgserver]
On PostgreSQL the scale part is bench/pg_scale.py (pgvector HNSW, full-text search, HNSW recall).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import database  # noqa: E402

os.environ.setdefault("HF_HUB_OFFLINE", "1")


KEYWORD_QUERIES = 100


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.array(values), q))


def vocabulary(n: int, rng: np.random.Generator) -> list[str]:
    syllables = ["ka", "lo", "mi", "ne", "ru", "sa", "to", "vi", "de", "po", "li", "ga", "be", "fu", "zo", "ha"]
    words = set()
    while len(words) < n:
        words.add("".join(rng.choice(syllables, size=rng.integers(2, 5))))
    return sorted(words)


DATASETS = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"


def real_text() -> tuple[list[str], list[str]] | None:
    """(sentences, questions) from the shared datasets: covid papers, FAQ answers, support replies;
    questions from covid_qa and banking77. None when the datasets are absent."""
    import csv
    import json
    import re

    papers, faq = DATASETS / "covid_papers_qa" / "covid_qa.json", DATASETS / "covid_faq" / "faq.csv"
    support, banking = DATASETS / "support_responses" / "bitext_support.csv", DATASETS / "banking77" / "test.csv"
    if not all(p.exists() for p in (papers, faq, support, banking)):
        return None
    split = re.compile(r"(?<=[.!?])\s+")
    sentences, questions = [], []
    for article in json.loads(papers.read_text())["data"]:
        for para in article["paragraphs"]:
            sentences += split.split(para["context"])
            questions += [qa["question"] for qa in para["qas"]]
    with faq.open(encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f):
            sentences += split.split(row["answer"])
    with support.open(encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f):
            sentences += split.split(row["response"])
    with banking.open(encoding="utf-8", newline="") as f:
        questions += [row["text"] for row in csv.DictReader(f)]
    return [s for s in (" ".join(x.split()) for x in sentences) if len(s.split()) >= 4], questions


def sentence_texts(n: int, sentences: list[str], rng: np.random.Generator) -> list[str]:
    """Chunks of ~110 words made of real sentences drawn at random (term statistics of real text)."""
    out = []
    picks = rng.integers(0, len(sentences), size=n * 8)
    at = 0
    for _ in range(n):
        words: list[str] = []
        while len(words) < 110:
            words += sentences[picks[at % len(picks)]].split()
            at += 1
        out.append(" ".join(words))
    return out


def synthetic_texts(n: int, vocab: list[str], rng: np.random.Generator) -> list[str]:
    ranks = np.minimum(rng.zipf(1.2, size=n * 110), len(vocab)) - 1
    lengths = rng.integers(80, 140, size=n)
    out, at = [], 0
    for length in lengths:
        out.append(" ".join(vocab[i] for i in ranks[at : at + length]))
        at += length
    return out


class MetaOnly:
    """Carries the MiniLM name and size so a KB filled with synthetic vectors is searchable by it."""

    name, dim, max_tokens = "all-minilm-l6-v2", 384, 256

    def __init__(self, vectors: dict[str, np.ndarray] | None = None):
        self.vectors = vectors or {}

    def embed(self, texts: list[str]) -> np.ndarray:
        return np.stack([self.vectors[t] for t in texts])

    def count_tokens(self, texts: list[str]) -> list[int]:
        return [len(t.split()) for t in texts]


def fill(kb_id: str, texts: list[str], rng: np.random.Generator) -> float:
    from ladder.ids import new_id
    from ladder.store.db import get_db

    db = get_db()
    start = time.perf_counter()
    vecs = rng.standard_normal((len(texts), 384)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    per_doc = 10
    from ladder.knowledge import keyword
    from ladder.knowledge.records import next_rowids

    with db.tx() as conn:
        rowids = next_rowids(conn, kb_id, len(texts))
        lengths = keyword.fts_lengths(conn, [(t, None) for t in texts])  # as ingest counts them
        for d in range(0, len(texts), per_doc):
            doc_id = new_id("doc")
            conn.execute(
                "INSERT INTO kb_docs(id, kb_id, project_id, name, source, source_sha256, format, bytes,"
                " n_chunks, metadata, created_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (
                    doc_id,
                    kb_id,
                    "proj-default",
                    f"doc{d}.txt",
                    f"doc{d}.txt",
                    f"sha{d}",
                    "text",
                    0,
                    per_doc,
                    "{}",
                    time.time(),
                ),
            )
            conn.executemany(
                "INSERT INTO kb_chunks(rowid, id, kb_id, doc_id, position, text, heading, page, tokens,"
                " chunk_size, chunk_overlap, embedding, fts_text_len, fts_heading_len)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                [
                    (
                        rowids[d + i],
                        new_id("chunk"),
                        kb_id,
                        doc_id,
                        i,
                        texts[d + i],
                        None,
                        None,
                        120,
                        200,
                        30,
                        vecs[d + i].tobytes(),
                        *lengths[d + i],
                    )
                    for i in range(min(per_doc, len(texts) - d))
                ],
            )
        conn.execute("UPDATE kbs SET generation = generation + 1 WHERE id=?", (kb_id,))
    return time.perf_counter() - start


def bench_ingest(n_chunks: int, rng: np.random.Generator, vocab: list[str]) -> dict:
    from ladder.knowledge import service
    from ladder.knowledge.embedder import get_embedder

    emb = get_embedder()
    emb.embed(["warm up"])
    words = [w for t in synthetic_texts(n_chunks, vocab, rng) for w in t.split()]
    # Plain sentences of vocabulary words, ~150 tokens per chunk after chunking.
    text = ". ".join(" ".join(words[i : i + 12]) for i in range(0, len(words), 12))
    service.create_kb("ingest")
    start = time.perf_counter()
    r = service.add_document("ingest", "big.txt", text.encode())
    took = time.perf_counter() - start
    return {"chunks": r.chunks, "seconds": took, "chunks_per_s": r.chunks / took}


def corpus(size: int, n_queries: int, rng, vocab: list[str], real) -> tuple[list[str], list[str]]:
    """(chunk texts, queries): real sentences and questions when the datasets are there."""
    texts = sentence_texts(size, real[0], rng) if real else synthetic_texts(size, vocab, rng)
    queries = []
    if real:  # real questions (covid_qa, banking77)
        queries = list(dict.fromkeys(real[1][i] for i in rng.integers(0, len(real[1]), n_queries * 2)))[:n_queries]
    for i in rng.integers(0, size, n_queries - len(queries)):
        words = texts[i].split()
        picks = rng.choice(len(words), size=4, replace=False)
        queries.append(" ".join(words[j] for j in picks) + " " + vocab[int(rng.integers(len(vocab)))])
    return texts, queries


def bench_scale(
    size: int,
    n_queries: int,
    rng: np.random.Generator,
    vocab: list[str],
    real_query: bool,
    real: tuple[list[str], list[str]] | None,
) -> dict:
    from ladder.knowledge import keyword, service
    from ladder.knowledge.records import rowid_range
    from ladder.store.db import get_db

    texts, queries = corpus(size, n_queries, rng, vocab, real)
    kb = service.create_kb(f"scale{size}", embedder=MetaOnly())
    fill_s = fill(kb.id, texts, rng)
    qvecs = rng.standard_normal((n_queries, 384)).astype(np.float32)
    qvecs /= np.linalg.norm(qvecs, axis=1, keepdims=True)
    fake = MetaOnly(dict(zip(queries, qvecs, strict=True)))
    start = time.perf_counter()
    service.search([kb.name], queries[0], k=5, embedder=fake)  # builds the in-memory matrix
    cold_ms = (time.perf_counter() - start) * 1000
    out = {"size": size, "fill_s": fill_s, "cold_ms": cold_ms}
    # Pass 1 meets each query word for the first time since the KB changed (its postings are read
    # from FTS5); pass 2 repeats the queries with the postings cached.
    for name in ("first", "again"):
        lat, cpu = [], []
        for q in queries:
            t0, c0 = time.perf_counter(), time.process_time()
            service.search([kb.name], q, k=5, embedder=fake)
            lat.append((time.perf_counter() - t0) * 1000)
            cpu.append((time.process_time() - c0) * 1000)
        out.update({f"{name}_p50": pct(lat, 50), f"{name}_p95": pct(lat, 95), f"{name}_cpu_p95": pct(cpu, 95)})
    if real_query:
        lat_e2e, cpu_e2e = [], []
        for q in queries[: max(20, n_queries // 4)]:
            t0, c0 = time.perf_counter(), time.process_time()
            service.search([kb.name], q, k=5)
            lat_e2e.append((time.perf_counter() - t0) * 1000)
            cpu_e2e.append((time.process_time() - c0) * 1000)
        out.update(e2e_p50=pct(lat_e2e, 50), e2e_p95=pct(lat_e2e, 95), e2e_cpu_p95=pct(cpu_e2e, 95))
    # Keyword search: the product's FTS5 query vs rank_bm25 on the same corpus and words.
    from rank_bm25 import BM25Okapi

    db = get_db()
    conn = db.connect()
    info = service.get_kb(kb.id)
    scope = keyword.Scope(*rowid_range(info.num), info.id, info.generation)
    kw_queries = [keyword.query_words(q) for q in queries[:KEYWORD_QUERIES]]

    per_query: dict[str, list[float]] = {}

    def timed(search, name: str) -> tuple[float, float]:
        t0, c0 = time.perf_counter(), time.process_time()
        lat = per_query[name] = []
        for words in kw_queries:
            q0 = time.perf_counter()
            search(words)
            lat.append((time.perf_counter() - q0) * 1000)
        n = len(kw_queries)
        return (time.perf_counter() - t0) * 1000 / n, (time.process_time() - c0) * 1000 / n

    keyword.forget(db, kb.id)  # the searches above warmed the postings: start cold
    kw_cold_ms, kw_cold_cpu = timed(lambda w: keyword.top_rows(conn, db, w, scope, 50), "cold")
    kw_warm_ms, kw_warm_cpu = timed(lambda w: keyword.top_rows(conn, db, w, scope, 50), "warm")
    fts_ms, fts_cpu = timed(lambda w: keyword.fts5_top_rows(conn, w, scope, 50), "fts5")
    # the same top 50, in the same order, as FTS5's own ORDER BY bm25()
    kw_differ = sum(
        [r for r, _ in keyword.top_rows(conn, db, w, scope, 50)]
        != [r for r, _ in keyword.fts5_top_rows(conn, w, scope, 50)]
        for w in kw_queries
    )
    okapi = BM25Okapi([[w.lower() for w in keyword._TOKEN.findall(t)] for t in texts])
    t0, c0 = time.perf_counter(), time.process_time()
    for words in kw_queries:  # the same words the product's query uses
        s = okapi.get_scores(words)
        np.argpartition(-s, 50)[:50]
    rb_ms = (time.perf_counter() - t0) * 1000 / len(kw_queries)
    rb_cpu = (time.process_time() - c0) * 1000 / len(kw_queries)
    out.update(
        kw_n=len(kw_queries),
        kw_differ=kw_differ,
        kw_cold_p50=pct(per_query["cold"], 50),
        kw_cold_p95=pct(per_query["cold"], 95),
        kw_warm_p50=pct(per_query["warm"], 50),
        kw_warm_p95=pct(per_query["warm"], 95),
        fts_p95=pct(per_query["fts5"], 95),
        kw_cold_ms=kw_cold_ms,
        kw_warm_ms=kw_warm_ms,
        fts_ms=fts_ms,
        rank_bm25_ms=rb_ms,
        kw_cold_cpu=kw_cold_cpu,
        kw_warm_cpu=kw_warm_cpu,
        fts_cpu=fts_cpu,
        rank_bm25_cpu=rb_cpu,
    )
    # A database from before migration 0007: the KB's lengths are counted once, by the next search.
    with db.tx() as tx:
        tx.execute("UPDATE kb_chunks SET fts_text_len = NULL, fts_heading_len = NULL WHERE kb_id = ?", (kb.id,))
    t0 = time.perf_counter()
    out["fill_lengths_rows"] = keyword.fill_lengths(db)
    out["fill_lengths_s"] = time.perf_counter() - t0
    # A change makes every process rebuild its matrix once: the cost of the first search after it.
    service.remove_doc(kb.name, "doc0.txt")
    t0 = time.perf_counter()
    service.search([kb.name], queries[1], k=5, embedder=fake)
    out["after_change_ms"] = (time.perf_counter() - t0) * 1000
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--ingest-chunks", type=int, default=300)
    ap.add_argument("--threads", type=int, default=1, help="torch threads for MiniLM (the cores are shared)")
    ap.add_argument("--no-real-query", action="store_true", help="skip the MiniLM end-to-end timings")
    ap.add_argument("--no-ingest", action="store_true", help="skip the MiniLM ingest timing")
    database.add_argument(ap)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ladder-bench-scale-"))
    os.environ["LADDER_HOME"] = str(work / "home")
    engine = database.use(args.database, work)
    rng = np.random.default_rng(0)
    vocab = vocabulary(30_000, rng)
    import torch

    torch.set_num_threads(args.threads)
    print(f"machine: {os.cpu_count()} CPU cores; torch threads {args.threads}; store: {engine}")
    if not args.no_ingest:
        ing = bench_ingest(args.ingest_chunks, rng, vocab)
        print(
            f"ingest: {ing['chunks']} chunks parsed, chunked, embedded (MiniLM) and indexed in {ing['seconds']:.1f} s"
            f" = {ing['chunks_per_s']:.1f} chunks/s"
        )
    real = real_text()
    print(
        "corpus: "
        + (
            "chunks of real sentences (covid papers, FAQ, support replies); real questions"
            if real
            else "synthetic Zipf words (shared datasets absent)"
        )
    )
    if engine == "postgresql":
        import pg_scale

        rows = []
        for size in args.sizes:
            texts, queries = corpus(size, args.queries, rng, vocab, real)
            rows.append(pg_scale.bench_size(size, args.queries, rng, texts, queries, MetaOnly))
            pg_scale.report(rows, args.queries)  # after each size: the 1M build takes long
        return 0
    rows = [bench_scale(size, args.queries, rng, vocab, not args.no_real_query, real) for size in args.sizes]
    print(
        f"\nhybrid search, k=5, {args.queries} queries, wall ms. retrieval: precomputed query vector, pass 1 (each"
        " word's postings read from FTS5 on first use) and pass 2 (cached); e2e: MiniLM embeds the query (the"
        " first queries again); rebuild: the first search after a document is removed."
    )
    print(
        f"{'chunks':>8} {'fill s':>7} {'first ms':>9} {'pass1 p50':>10} {'pass1 p95':>10} {'pass2 p50':>10}"
        f" {'pass2 p95':>10} {'e2e p50':>8} {'e2e p95':>8} {'rebuild ms':>10}"
    )
    for r in rows:
        print(
            f"{r['size']:>8} {r['fill_s']:>7.1f} {r['cold_ms']:>9.0f} {r['first_p50']:>10.1f} {r['first_p95']:>10.1f}"
            f" {r['again_p50']:>10.1f} {r['again_p95']:>10.1f} {r.get('e2e_p50', float('nan')):>8.1f}"
            f" {r.get('e2e_p95', float('nan')):>8.1f} {r['after_change_ms']:>10.0f}"
        )
    print(
        f"\nkeyword search, top 50, mean ms per query over {rows[0]['kw_n']} queries (same corpus, same words);"
        " ladder cold: the first search of each term after the KB changed; warm: postings cached"
    )
    print(
        f"{'chunks':>8} {'ladder cold':>12} {'ladder warm':>12} {'FTS5 bm25()':>12} {'rank_bm25':>10}"
        f" {'ratio warm':>11} {'ratio cold':>11} {'cpu ratio warm':>15}"
    )
    for r in rows:
        print(
            f"{r['size']:>8} {r['kw_cold_ms']:>12.2f} {r['kw_warm_ms']:>12.2f} {r['fts_ms']:>12.2f}"
            f" {r['rank_bm25_ms']:>10.1f} {r['rank_bm25_ms'] / r['kw_warm_ms']:>10.1f}x"
            f" {r['rank_bm25_ms'] / r['kw_cold_ms']:>10.1f}x {r['rank_bm25_cpu'] / r['kw_warm_cpu']:>14.1f}x"
        )
    print(
        "\nkeyword search per query, wall ms (p50 / p95); top 50 unlike FTS5's ORDER BY bm25(): queries that differ;"
        " lengths: counting the FTS lengths of a KB written without them (before migration 0007)"
    )
    print(f"{'chunks':>8} {'cold p50/p95':>14} {'warm p50/p95':>14} {'FTS5 p95':>9} {'differ':>7} {'lengths':>16}")
    for r in rows:
        print(
            f"{r['size']:>8} {r['kw_cold_p50']:>6.2f} / {r['kw_cold_p95']:<5.2f} {r['kw_warm_p50']:>6.2f} /"
            f" {r['kw_warm_p95']:<5.2f} {r['fts_p95']:>9.2f} {r['kw_differ']:>7}"
            f" {r['fill_lengths_rows']:>7} in {r['fill_lengths_s']:.1f} s"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
