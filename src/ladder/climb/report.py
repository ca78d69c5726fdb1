"""Report directories: Markdown and one self-contained HTML page (plots inlined as base64 PNG)."""

from __future__ import annotations

import base64
import html
import json
import logging
from pathlib import Path

from ladder.climb import plots
from ladder.climb import table as tbl
from ladder.settings import get_settings
from ladder.store.blobs import atomic_dir, commit_dir

log = logging.getLogger("ladder.climb")

WORST = 10
ROUTING_THRESHOLDS = (0.5, 0.6, 0.7, 0.8, 0.9)  # the confidence cut-offs the routing table shows


ROUTING_NOTE = (
    "Each answer's confidence is its top label probability. Answering only at or above a cut-off "
    "(pipeline setting abstain_below) sends the rest to a person: the share answered and its accuracy. "
    "ECE: expected calibration error over 10 equal-width bins (0 = probabilities mean what they say)."
)


def reports_dir() -> Path:
    return get_settings().shared_dir / "reports"


def _worst(result) -> tuple[list[str], list[list[str]]]:
    """Items failed by the most rungs, with every rung's output side by side."""
    ran = [r for r in result.rungs if r.run is not None]
    if not ran:
        return [], []
    n = len(ran[0].run.rows)
    fails = [sum(not r.run.rows[i]["passed"] for r in ran if i < len(r.run.rows)) for i in range(n)]
    order = [i for i in sorted(range(n), key=lambda i: (-fails[i], i)) if fails[i] > 0][:WORST]
    header = ["input", "reference"] + [r.name for r in ran]
    body = []
    for i in order:
        row0 = ran[0].run.rows[i]
        cells = [_short(row0["input"], 160), _short(row0["reference"], 80)]
        for r in ran:
            row = r.run.rows[i]
            mark = "ok" if row["passed"] else "FAIL"
            cells.append(f"{mark}: {_short(row['output'] or row.get('error') or '', 80)}")
        body.append(cells)
    return header, body


def _routing(result) -> tuple[list[str], list[list[str]]]:
    """Per rung with label probabilities: at each cut-off, the share answered and its accuracy."""
    ran = [r for r in result.rungs if r.run is not None and r.run.calibration]
    if not ran:
        return [], []
    header = ["rung", "ECE"] + [f"answer if p >= {t:.1f}" for t in ROUTING_THRESHOLDS]
    body = []
    for r in ran:
        cal = r.run.calibration
        by_t = {round(p["threshold"], 2): p for p in cal["coverage"]}
        cells = [r.name, f"{cal['ece']:.3f}"]
        for t in ROUTING_THRESHOLDS:
            p = by_t.get(round(t, 2))
            if p is None:
                cells.append("-")
            elif p["accuracy"] is None:
                cells.append("0% answered")
            else:
                cells.append(f"{p['coverage']:.0%} answered, {p['accuracy']:.0%} right")
        body.append(cells)
    return header, body


def _short(text: str, n: int) -> str:
    t = " ".join(str(text).split())
    return t if len(t) <= n else t[: n - 1] + "…"


def _figures(result) -> dict[str, bytes]:
    ran = [r for r in result.rungs if r.run is not None]
    figs: dict[str, bytes] = {}
    if not ran:
        return figs
    names = [r.name for r in ran]
    m = result.headline
    figs["quality.png"] = plots.quality(
        names,
        [r.run.metrics.get(m, r.run.value) for r in ran],
        [r.run.ci for r in ran],
        m,
        result.target[1] if result.target else None,
    )
    figs["latency.png"] = plots.latency(names, [r.run.p50_ms for r in ran], [r.run.p95_ms for r in ran])
    figs["cost.png"] = plots.cost(names, [r.run.cost_per_1k for r in ran])
    if result.tune_metric:
        from ladder.climb.tune_plot import validation_curve

        figs["loss.png"] = validation_curve(result.loss, **result.tune_metric)
    elif result.loss:
        figs["loss.png"] = plots.loss_curve(result.loss)
    calibrated = [r for r in ran if r.run.calibration]
    if calibrated:
        cnames = [r.name for r in calibrated]
        figs["reliability.png"] = plots.reliability(cnames, [r.run.calibration["bins"] for r in calibrated])
        figs["coverage.png"] = plots.coverage(cnames, [r.run.calibration["coverage"] for r in calibrated])
    if result.labels:
        pick = next((r for r in ran if r.name == result.recommendation.get("rung")), ran[-1])
        figs["confusion.png"] = plots.confusion(
            [row["parsed"] for row in pick.run.rows],
            [row["reference"] for row in pick.run.rows],
            result.labels,
            f"confusion: {pick.name}",
        )
    return figs


def _summary_lines(result) -> list[str]:
    rec = result.recommendation
    lines = [f"Recommendation: **{rec.get('rung')}**"] + [f"- {r}" for r in rec.get("reasons", [])]
    if rec.get("steps"):
        lines += ["", "What each step bought:"] + [f"- {s['text']}" for s in rec["steps"]]
    f = result.forgetting
    if f:
        verdict = "CATASTROPHIC FORGETTING" if f["catastrophic"] else "no significant forgetting"
        lines += [
            "",
            f"Regression check ({f['n']} general questions, {f['metric']}): base {f['base']:.3f}, "
            f"tuned {f['tuned']:.3f}, drop {f['drop']:+.3f} (threshold {f['threshold']:.2f}): {verdict}",
        ]
    return lines


def write_report(result, *, title: str | None = None) -> Path:
    """Write `<LADDER_HOME>/reports/<id>/` atomically: report.md, report.html, the PNGs, summary.json."""
    final = reports_dir() / result.id
    tmp = atomic_dir(final)
    title = title or f"ladder climb {result.id}"
    header, body = tbl.rows(result)
    wh, wb = _worst(result)
    rh, rb = _routing(result)
    figs = _figures(result)
    for name, data in figs.items():
        (tmp / name).write_bytes(data)
    target = f"{result.target[0]} >= {result.target[1]:.3g}" if result.target else "none"
    intro = [
        f"# {title}",
        "",
        f"Task: {result.task}; {result.n_train} training and {result.n_test} test items; "
        f"headline metric: {result.headline}; target: {target}.",
        "",
    ]
    latency_note = next((r.run.latency_basis for r in result.rungs if r.run), "")
    md = (
        intro
        + [tbl.markdown(header, body), "", f"Latency: {latency_note}. Cost: price table per 1,000 requests.", ""]
        + _summary_lines(result)
        + [""]
    )
    if rb:
        md += ["## Routing low-confidence answers to a person", "", ROUTING_NOTE, "", tbl.markdown(rh, rb), ""]
    md += [f"![{n}]({n})" for n in figs] + [""]
    if wb:
        md += ["## Worst failures, side by side", "", tbl.markdown(wh, wb), ""]
    (tmp / "report.md").write_text("\n".join(md), encoding="utf-8")
    (tmp / "report.html").write_text(
        _html(title, intro[2], header, body, _summary_lines(result), figs, wh, wb, latency_note, (rh, rb)),
        encoding="utf-8",
    )
    (tmp / "summary.json").write_text(json.dumps(_summary(result), indent=2, default=str), encoding="utf-8")
    commit_dir(tmp, final)
    _publish(final)
    return final


def _publish(final: Path) -> None:
    """With LADDER_BLOB_URL: a copy under `<blob url>/reports/<id>/`, so a server on any machine shows it.

    The local report is complete already and the run's results are stored by the caller; a blob store
    that refuses the copy must not lose them, so the failure is logged, not raised.
    """
    from ladder.store import blob_dirs

    url = blob_dirs.remote_url("reports", final.name)
    if url is None:
        return
    try:
        blob_dirs.upload_dir(final, url)
    except blob_dirs.BlobStoreError as e:
        log.warning("report %s stays on this machine only: %s", final, e.message)


def report_html(report_dir: str | None) -> str | None:
    """A stored report's HTML: from its directory on this machine, else from the blob store; None if neither."""
    if not report_dir:
        return None
    local = Path(report_dir) / "report.html"
    if local.is_file():
        return local.read_text(encoding="utf-8")
    from ladder.store import blob_dirs

    url = blob_dirs.remote_url("reports", Path(report_dir).name)
    if url is None or Path(report_dir).name not in blob_dirs.complete_children(blob_dirs.remote_url("reports")):
        return None
    return blob_dirs.read_text(f"{url}/report.html")


def _summary(result) -> dict:
    return {
        "id": result.id,
        "task": result.task,
        "headline": result.headline,
        "target": result.target,
        "recommendation": result.recommendation,
        "forgetting": result.forgetting,
        "rungs": [
            {"name": r.name, "skipped": r.skipped, "setup": r.setup, "run": r.run.summary() if r.run else None}
            for r in result.rungs
        ],
    }


def _table_html(header: list[str], body: list[list[str]]) -> str:
    th = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    trs = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in body)
    return f"<table><thead><tr>{th}</tr></thead><tbody>{trs}</tbody></table>"


def _md_inline(text: str) -> str:
    out = html.escape(text)
    parts = out.split("**")
    return "".join(f"<b>{p}</b>" if i % 2 else p for i, p in enumerate(parts))


def _html(title, intro, header, body, summary, figs, wh, wb, latency_note, routing=((), ())) -> str:
    items, in_list = [], False
    for line in summary:
        if line.startswith("- "):
            if not in_list:
                items.append("<ul>")
                in_list = True
            items.append(f"<li>{_md_inline(line[2:])}</li>")
        else:
            if in_list:
                items.append("</ul>")
                in_list = False
            if line:
                items.append(f"<p>{_md_inline(line)}</p>")
    if in_list:
        items.append("</ul>")
    imgs = "".join(
        f'<figure><img alt="{n}" src="data:image/png;base64,{base64.b64encode(d).decode()}"></figure>'
        for n, d in figs.items()
    )
    worst = f"<h2>Worst failures, side by side</h2>{_table_html(wh, wb)}" if wb else ""
    rh, rb = routing
    if rb:
        worst = (
            f"<h2>Routing low-confidence answers to a person</h2><p>{html.escape(ROUTING_NOTE)}</p>"
            f"{_table_html(list(rh), list(rb))}{worst}"
        )
    style = (
        "body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}"
        "table{border-collapse:collapse;margin:1em 0;font-size:14px}td,th{border:1px solid #ccc;"
        "padding:4px 8px;text-align:left;vertical-align:top}th{background:#f3f3f3}"
        "figure{display:inline-block;margin:.5em}img{max-width:560px}"
    )
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{style}</style></head><body><h1>{html.escape(title)}</h1><p>{html.escape(intro)}</p>"
        f"{_table_html(header, body)}<p>Latency: {html.escape(latency_note)}.</p>{''.join(items)}"
        f"<h2>Plots</h2>{imgs}{worst}</body></html>"
    )


def write_eval_report(run, *, task: str = "eval") -> Path:
    """A one-rung report for `ladder eval` (same layout as a climb's)."""
    from ladder.climb.advisor import Advice
    from ladder.climb.runner import ClimbResult, RungResult

    rung = RungResult(run.pipeline, "eval", run=run)
    res = ClimbResult(
        run.id,
        task,
        None,
        run.headline,
        [rung],
        Advice("prompt"),
        labels=list(run.labels),
        recommendation={"rung": None, "reasons": [], "steps": []},
        n_test=run.n,
    )
    return write_report(res, title=f"ladder eval {run.id}: {run.pipeline}")
