"""Run a pipeline over a test set: batched, cached generation, per-item records, run-level summary."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ladder.errors import Stopped
from ladder.evals import scoring
from ladder.evals.judge import missing as judge_missing
from ladder.evals.metrics import calibration, percentile
from ladder.evals.testset import TestItem
from ladder.ids import new_id
from ladder.models.registry import get_model
from ladder.models.service import pick_backend
from ladder.pipelines.pipeline import Pipeline, PipelineResult, as_plain
from ladder.settings import get_settings
from ladder.store.db import DEFAULT_PROJECT


@dataclass
class EvalRun:
    id: str
    pipeline: str
    fingerprint: str
    model: str
    n: int
    headline: str
    value: float
    ci: tuple[float, float]
    metrics: dict[str, float]
    format_compliance: float
    p50_ms: float
    p95_ms: float
    latency_basis: str
    prompt_tokens: float  # mean per request
    completion_tokens: float
    cost_per_1k: float
    cached: int
    wall_s: float
    labels: list[str] = field(default_factory=list)
    rows: list[dict] = field(default_factory=list)
    test_set: str | None = None
    report_dir: str | None = None
    truncated: int = 0  # answers cut at max_tokens (finish_reason "length"): counted apart from wrong ones
    missing: dict[str, int] = field(default_factory=dict)  # per metric, items it could not score (judge)
    # label pipelines with probabilities: ECE, reliability bins, accuracy vs coverage (metrics.calibration)
    calibration: dict | None = None

    def summary(self) -> dict:
        d = {k: v for k, v in self.__dict__.items() if k != "rows"}
        d["ci"] = list(self.ci)
        return d

    @property
    def passes(self) -> list[float]:
        return [float(r["passed"]) for r in self.rows]


def _ref_json(ref: str) -> object:
    try:
        return json.loads(ref)
    except (json.JSONDecodeError, ValueError):
        return None


def _row(i: int, item: TestItem, res: PipelineResult, labels: list[str]) -> dict:
    return {
        "idx": i,
        "input": item.input,
        "messages": item.messages,
        "reference": item.reference,
        "ref_json": _ref_json(item.reference),
        "sources": item.sources,
        "labels": labels,
        "output": res.text,
        "parsed": res.parsed,
        "valid": bool(res.valid),
        "latency_ms": res.latency_ms + res.scoring_ms,  # label scoring is part of what a user waits
        "prompt_tokens": res.usage.prompt_tokens,
        "completion_tokens": res.usage.completion_tokens,
        "cached": res.cached,
        "truncated": res.finish_reason == "length",
        "error": res.error,
        "citations": [as_plain(c) for c in res.citations],
        "dropped": res.dropped_citations,
        "hits": [as_plain(h) for h in res.hits],
        "label_probs": res.label_probs,
        "confidence": res.confidence,
        "abstained": res.abstained,
    }


def cost_per_1k(
    model: str,
    prompt_tokens: float,
    completion_tokens: float,
    embeds_per_request: float,
    project_id: str = DEFAULT_PROJECT,
) -> float:
    """US dollars for 1,000 requests at the measured mean tokens, from the price table."""
    spec = get_model(model, project_id)
    s = get_settings()
    p = s.price_for(model, remote=spec.backend == "remote")
    per = (
        prompt_tokens / 1000 * p.input_per_1k
        + completion_tokens / 1000 * p.output_per_1k
        + embeds_per_request * s.price_for(s.embedding_model).per_embedded_chunk
    )
    return per * 1000


def run_eval(
    pipeline: Pipeline,
    items: list[TestItem],
    *,
    metrics: list[str] | None = None,
    batch_size: int = 16,
    backend: str | None = None,
    use_cache: bool = True,
    latency_sample: int = 8,
    judge_model: str | None = None,
    name: str | None = None,
    test_set: str | None = None,
    store: bool = True,
    on_progress: Callable[[int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    project_id: str = DEFAULT_PROJECT,
) -> EvalRun:
    """Score `pipeline` on `items`. The first metric is the headline (with a 95% bootstrap interval).

    Generation is batched (`batch_size` per forward pass) for models torch serves; per-item latency is
    then the batch's time shared out, so p50/p95 come from `latency_sample` extra requests sent one
    at a time through the serving path (`Pipeline.run`), as a chat user would see them.

    `should_stop` is asked before the first item and after each batch of answers; when it says yes
    the eval ends with `Stopped` and nothing is stored (a cancelled task, a worker shutting down).
    """
    cfg = pipeline.config
    labels = list(cfg.parser.labels)
    names = metrics or scoring.default_metrics(
        cfg.parser.kind, rag=bool(cfg.kbs), has_sources=any(i.sources for i in items), judge=bool(judge_model)
    )
    scoring.check_metrics(names)
    run_id = new_id("eval")
    t0 = time.perf_counter()
    # Batch on torch only where torch serves the model anyway (tuned adapters, HF dirs, bots with
    # backend torch): a GGUF model is scored on llama.cpp, its serving path, so the eval sees the answers
    # users get (torch batches are ~2x faster, but their text differs on near-ties; docs/ladder.md).
    served_by = cfg.backend or get_model(cfg.model, project_id).backend
    gen_backend = backend or ("torch" if served_by == "torch" and batch_size > 1 else cfg.backend)
    # A backend the model cannot be served with is refused now, not recorded as an error on every item.
    pick_backend(get_model(cfg.model, project_id), gen_backend)

    def progressed(n: int) -> None:
        if on_progress:
            on_progress(n)
        if should_stop and should_stop():
            raise Stopped(f"eval {run_id} stopped after an item")

    if should_stop and should_stop():
        raise Stopped(f"eval {run_id} stopped before its first item")
    results = pipeline.run_batch(
        [i.messages for i in items],
        batch_size=batch_size,
        backend=gen_backend,
        use_cache=use_cache,
        source=run_id,
        on_progress=progressed if should_stop else on_progress,
    )
    batched = gen_backend == "torch" and batch_size > 1
    rows = [_row(i, it, r, labels) for i, (it, r) in enumerate(zip(items, results, strict=True))]
    if batched:  # an answer's latency is its pass's wall time; its share is that over the pass's answers
        for row, r in zip(rows, results, strict=True):
            row["latency_ms"] = r.latency_ms / r.batch_n + r.scoring_ms
    if judge_model:
        from ladder.evals.judge import judge_rows

        judge_rows(judge_model, rows, project_id=project_id)
    for r, ok in zip(rows, scoring.passes(names[0], rows), strict=True):
        r["passed"] = ok
    values = scoring.score_run(names, rows, labels)
    headline = names[0]
    ci = scoring.headline_ci(headline, rows, labels) if rows else (0.0, 0.0)
    latencies, basis = [r["latency_ms"] for r in rows], "per item"
    if batched and latency_sample and items:
        from ladder.models import service

        service.open_backend(cfg.model, backend=cfg.backend, project_id=project_id)  # loading is not latency
        # Never from the cache: a cached answer carries the latency of the batch that made it.
        sample = pipeline.run_batch(
            [i.messages for i in items[:latency_sample]], batch_size=1, use_cache=False, source=run_id
        )
        latencies = [r.latency_ms + r.scoring_ms for r in sample]
        basis = f"{len(sample)} requests one at a time ({cfg.backend or 'default'} backend)"
    n = max(1, len(rows))
    pt = sum(r["prompt_tokens"] for r in rows) / n
    ct = sum(r["completion_tokens"] for r in rows) / n
    embeds = (1 if cfg.kbs else 0) + (1 if cfg.few_shot_mode == "retrieved" and cfg.few_shot else 0)
    run = EvalRun(
        id=run_id,
        pipeline=name or pipeline.label,
        fingerprint=cfg.fingerprint(),
        model=cfg.model,
        n=len(rows),
        headline=headline,
        value=values.get(headline, 0.0),
        ci=ci,
        metrics=values,
        format_compliance=sum(r["valid"] for r in rows) / n,
        p50_ms=percentile(latencies, 50),
        p95_ms=percentile(latencies, 95),
        latency_basis=basis,
        prompt_tokens=pt,
        completion_tokens=ct,
        cost_per_1k=cost_per_1k(cfg.model, pt, ct, embeds, project_id),
        cached=sum(r["cached"] for r in rows),
        wall_s=time.perf_counter() - t0,
        labels=labels,
        rows=rows,
        test_set=test_set,
        truncated=sum(r["truncated"] for r in rows),
        missing={"judge": judge_missing(rows)} if judge_model else {},
        calibration=calibration([r["label_probs"] for r in rows], [r["reference"] for r in rows]),
    )
    if store:
        from ladder.evals.store import save_run

        save_run(run, project_id=project_id)
    return run
