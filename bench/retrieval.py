"""Retrieval quality on covid_faq: keyword search alone, MiniLM dense alone and hybrid RRF, side by side.

One document per FAQ entry (question + answer); the queries are the human paraphrases in
question_pairs.csv (similar=1); the answering document is the entry whose question is question_1.
Run: .venv/bin/python bench/retrieval.py [--k 5] [--database pgserver|postgresql://…]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import database  # noqa: E402

os.environ.setdefault("HF_HUB_OFFLINE", "1")
DATA = Path(__file__).resolve().parents[1].parent / "shared" / "datasets" / "covid_faq"
CONFIGS = {
    "keyword": {"bm25": 1.0, "dense": 0.0},  # FTS5 BM25 on SQLite, ts_rank on PostgreSQL
    "dense (MiniLM)": {"bm25": 0.0, "dense": 1.0},
    "hybrid (RRF)": None,
}


def build(data: Path, workdir: Path) -> tuple[Path, Path]:
    """The FAQ as JSONL (one row per entry) and the eval questions naming each answering row."""
    with (data / "faq.csv").open(encoding="utf-8", newline="") as f:
        faq = [r for r in csv.DictReader(f) if r["question"].strip()]
    ids = {}
    docs = workdir / "faq.jsonl"
    with docs.open("w", encoding="utf-8") as f:
        for i, row in enumerate(faq):
            ids.setdefault(row["question"].strip(), f"faq-{i}")
            f.write(
                json.dumps(
                    {
                        "faq_id": f"faq-{i}",
                        "question": row["question"],
                        "answer": row["answer"],
                        "source": row["source"],
                    }
                )
                + "\n"
            )
    questions = workdir / "questions.jsonl"
    n = 0
    with (data / "question_pairs.csv").open(encoding="utf-8", newline="") as f, questions.open("w") as out:
        for row in csv.DictReader(f):
            if row["similar"] == "1" and row["question_1"].strip() in ids:
                out.write(json.dumps({"question": row["question_2"], "faq_id": ids[row["question_1"].strip()]}) + "\n")
                n += 1
    return docs, questions


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--k", type=int, default=5)
    ap.add_argument("--data", type=Path, default=DATA)
    database.add_argument(ap)
    args = ap.parse_args()
    if not (args.data / "faq.csv").exists():
        print(f"skipped: {args.data} is absent")
        return 0
    import torch

    torch.set_num_threads(1)
    work = Path(tempfile.mkdtemp(prefix="ladder-bench-retrieval-"))
    os.environ["LADDER_HOME"] = str(work / "home")
    engine = database.use(args.database, work)
    from ladder.knowledge import service
    from ladder.knowledge.evaluate import doc_ranking, scores

    docs, questions = build(args.data, work)
    service.create_kb("covid")
    start = time.perf_counter()
    result = service.add_files("covid", [docs], text_column="question,answer")[0]
    ingest_s = time.perf_counter() - start
    print(f"indexed {len(result.docs)} FAQ entries as {result.chunks} chunks in {ingest_s:.1f} s")
    by_faq = {d.metadata["faq_id"]: d.id for d in result.docs}
    qs = [json.loads(line) for line in questions.read_text().splitlines()]
    rows = []
    for label, weights in CONFIGS.items():
        totals, lat = {"recall": 0.0, "rr": 0.0, "ndcg": 0.0}, []
        for q in qs:
            t0 = time.perf_counter()
            hits = service.search(["covid"], q["question"], k=30, weights=weights)
            lat.append((time.perf_counter() - t0) * 1000)
            s = scores(doc_ranking(hits, max(args.k, 10)), {by_faq[q["faq_id"]]}, args.k)
            for key in totals:
                totals[key] += s[key]
        n = len(qs)
        lat.sort()
        rows.append((label, totals["recall"] / n, totals["rr"] / n, totals["ndcg"] / n, lat[n // 2]))
    print(f"\ncovid_faq on {engine}: {len(qs)} paraphrased questions, {len(by_faq)} documents, k={args.k}")
    print(f"{'method':<16} {'recall@' + str(args.k):>9} {'MRR':>7} {'nDCG@10':>8} {'p50 ms':>7}")
    for label, recall, mrr, ndcg, p50 in rows:
        print(f"{label:<16} {recall:>9.3f} {mrr:>7.3f} {ndcg:>8.3f} {p50:>7.1f}")
    best_single = max(rows[0][1], rows[1][1])
    print(
        f"\nhybrid / best single method recall@{args.k}: {rows[2][1] / best_single:.3f}x "
        f"(target: hybrid >= 0.90 and above both)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
