"""The recommendation: the cheapest rung that meets the target, what each step bought, what is noise."""

from __future__ import annotations

from ladder.evals.metrics import paired_bootstrap


def item_scores(rung, metric: str) -> list[float]:
    """Per-item scores for paired comparisons (accuracy for label metrics, pass/fail otherwise)."""
    from ladder.evals import scoring

    name = scoring.ITEM_METRIC.get(metric, metric)
    s = scoring.per_item_scores(name, rung.run.rows)
    if s is None or len(s) != len(rung.run.rows):
        return [float(r["passed"]) for r in rung.run.rows]
    return list(s)


def total_cost(rung, volume: int) -> float:
    """Cost of serving `volume` requests plus the one-off set-up (training)."""
    return rung.run.cost_per_1k * volume / 1000 + float(rung.setup.get("cost_usd") or 0.0)


def _fmt(x: float, metric: str) -> str:
    return f"{x * 100:+.1f} points" if metric not in ("rouge_l", "embed_sim") else f"{x:+.3f}"


def recommend(result, volume: int = 100_000) -> dict:
    metric = result.headline
    ran = [r for r in result.rungs if r.run is not None]
    if not ran:
        return {"rung": None, "reasons": ["no rung could be evaluated"], "steps": []}
    steps = []
    for prev, cur in zip(ran, ran[1:], strict=False):
        d = paired_bootstrap(item_scores(prev, metric), item_scores(cur, metric))
        verdict = ("a real gain" if d["diff"] > 0 else "a real loss") if d["significant"] else "within noise"
        steps.append(
            {
                "from": prev.name,
                "to": cur.name,
                "diff": d["diff"],
                "lo": d["lo"],
                "hi": d["hi"],
                "significant": d["significant"],
                "text": f"{prev.name} -> {cur.name}: {_fmt(d['diff'], metric)} (95% CI "
                f"{_fmt(d['lo'], metric)} to {_fmt(d['hi'], metric)}), {verdict}",
            }
        )
    reasons = []
    best = max(ran, key=lambda r: (r.value(metric), -ran.index(r)))
    target = result.target
    order = sorted(ran, key=lambda r: (total_cost(r, volume), ran.index(r)))
    if target:
        meeting = [r for r in ran if r.value(metric) >= target[1] - 1e-12]
        if meeting:
            pick = min(meeting, key=lambda r: (total_cost(r, volume), ran.index(r)))
            reasons.append(
                f"{pick.name} meets the target {metric} >= {target[1]:.3g} with {pick.value(metric):.3f} "
                f"(95% CI {pick.run.ci[0]:.3f}-{pick.run.ci[1]:.3f}) and is the cheapest rung that does: "
                f"${total_cost(pick, volume):.4f} for {volume:,} requests including set-up"
            )
            lo = pick.run.ci[0]
            if lo < target[1]:
                reasons.append(
                    f"its interval reaches below the target ({lo:.3f}): on this test set size the "
                    "target is met by the point estimate, not with certainty; a larger test set would tell"
                )
        else:
            pick = _cheapest_within_noise(best, order, metric)
            reasons.append(
                f"no rung meets the target {metric} >= {target[1]:.3g}; the best is {best.name} with "
                f"{best.value(metric):.3f} (95% CI {best.run.ci[0]:.3f}-{best.run.ci[1]:.3f})"
            )
            if pick is not best:
                reasons.append(f"{pick.name} is within noise of it and cheaper, so it is the better choice")
            reasons.append(
                "to reach the target: more or better training data, a larger base model, or a sharper instruction"
            )
    else:
        pick = _cheapest_within_noise(best, order, metric)
        reasons.append(
            f"no target given: the best rung is {best.name} with {metric} {best.value(metric):.3f} "
            f"(95% CI {best.run.ci[0]:.3f}-{best.run.ci[1]:.3f})"
        )
        if pick is not best:
            reasons.append(
                f"{pick.name} scores {pick.value(metric):.3f}, within noise of the best (paired bootstrap "
                "interval includes zero), and costs less, so it is recommended"
            )
    skipped = [r for r in result.rungs if r.skipped]
    reasons += [f"{r.name}: {r.skipped}" for r in skipped]
    if result.forgetting and result.forgetting.get("catastrophic") and pick.kind.startswith("fine-tune"):
        reasons.append(
            "warning: the tuned model lost general ability on the regression set (catastrophic "
            "forgetting); prefer a prompting rung if general questions matter"
        )
    return {
        "rung": pick.name,
        "value": pick.value(metric),
        "ci": list(pick.run.ci),
        "reasons": reasons,
        "steps": steps,
        "volume": volume,
    }


def _cheapest_within_noise(best, order: list, metric: str):
    """The cheapest rung whose per-item scores are not significantly below the best rung's."""
    best_scores = item_scores(best, metric)
    for r in order:
        if r is best:
            return r
        d = paired_bootstrap(item_scores(r, metric), best_scores)
        if not d["significant"]:
            return r
    return best
