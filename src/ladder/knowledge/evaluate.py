"""Retrieval quality of a KB: recall@k, MRR and nDCG@10 for questions with known answering documents."""

from __future__ import annotations

import math
from pathlib import Path

from ladder.errors import InvalidInput
from ladder.knowledge.embedder import Embedder
from ladder.knowledge.records import KB
from ladder.store.db import get_db


def doc_ranking(hits, depth: int) -> list[set[str]]:
    """Each distinct document in hit order, as the set of names it answers to (id, name, source)."""
    seen, out = set(), []
    for h in hits:
        if h.doc_id in seen:
            continue
        seen.add(h.doc_id)
        out.append({h.doc_id, h.doc_name, h.metadata.get("_source", "")} - {""})
        if len(out) == depth:
            break
    return out


def scores(ranking: list[set[str]], relevant: set[str], k: int) -> dict[str, float]:
    """recall@k, reciprocal rank and nDCG@10 (binary relevance) of one ranked document list."""
    hit_at = [bool(names & relevant) for names in ranking]
    recall = min(1.0, sum(hit_at[:k]) / len(relevant)) if relevant else 0.0
    rr = next((1.0 / (i + 1) for i, hit in enumerate(hit_at) if hit), 0.0)
    dcg = sum(1.0 / math.log2(i + 2) for i, hit in enumerate(hit_at[:10]) if hit)
    ideal = sum(1.0 / math.log2(i + 2) for i in range(min(len(relevant), 10)))
    return {"recall": recall, "rr": rr, "ndcg": dcg / ideal if ideal else 0.0}


def read_questions(path: Path) -> list[tuple[str, set[str]]]:
    if not path.is_file():
        raise InvalidInput(f"{path}: no such file", param="questions")
    from ladder.data.boundedjson import read_jsonl
    from ladder.store.files import check_size

    check_size(path.stat().st_size, path.name, param="questions")
    out = []
    for item in read_jsonl(path):  # the bounded reader every user JSONL goes through
        number, obj = item.line, item.value
        if item.error is not None:
            raise InvalidInput(f"{path.name}: line {number}: {item.error} ({item.hint})", param="questions")
        q = obj.get("question") if isinstance(obj, dict) else None
        docs = obj.get("docs", obj.get("doc")) if isinstance(obj, dict) else None
        docs = [docs] if isinstance(docs, str) else docs
        if not isinstance(q, str) or not q.strip() or not docs or not all(isinstance(d, str) for d in docs):
            raise InvalidInput(
                f'{path.name}: line {number}: expected {{"question": str, "doc": name}} or '
                '"docs": [names] (document names, upload names or ids)',
                param="questions",
            )
        out.append((q, set(docs)))
    if not out:
        raise InvalidInput(f"{path.name}: no questions", param="questions")
    return out


def run_eval(kb: str | KB, path: Path, *, k: int, project_id: str, weights: dict | None, embedder: Embedder) -> dict:
    from ladder.knowledge.retrieve import run_search

    questions = read_questions(path)
    depth = max(k, 10)
    totals = {"recall": 0.0, "rr": 0.0, "ndcg": 0.0}
    misses = []
    db = get_db()
    for question, relevant in questions:
        hits = run_search(
            [kb.id if isinstance(kb, KB) else kb],
            question,
            k=min(3 * depth, 100),
            threshold=None,
            filters=None,
            weights=weights,
            project_id=project_id,
            reranker=None,
            embedder=embedder,
        )
        for h in hits:  # an upload's name also names every row document made from it
            h.metadata["_source"] = _source(db, h.doc_id)
        s = scores(doc_ranking(hits, depth), relevant, k)
        for key in totals:
            totals[key] += s[key]
        if s["recall"] == 0:
            misses.append(question)
    n = len(questions)
    return {
        "questions": n,
        "k": k,
        f"recall@{k}": totals["recall"] / n,
        "mrr": totals["rr"] / n,
        "ndcg@10": totals["ndcg"] / n,
        "misses": misses,
    }


def _source(db, doc_id: str) -> str:
    row = db.one("SELECT source FROM kb_docs WHERE id=?", (doc_id,))
    return row[0] if row else ""
