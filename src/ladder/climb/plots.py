"""Report plots as PNG bytes (matplotlib, Agg): quality, latency, cost, loss, confusion, calibration, coverage."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from ladder.pipelines.parsers import normalise  # noqa: E402


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return buf.getvalue()


def quality(
    names: list[str], values: list[float], cis: list[tuple[float, float]], metric: str, target: float | None = None
) -> bytes:
    fig, ax = plt.subplots(figsize=(max(5, 1.3 * len(names)), 3.6))
    x = np.arange(len(names))
    err = np.array(
        [
            [v - lo for v, (lo, _) in zip(values, cis, strict=True)],
            [hi - v for v, (_, hi) in zip(values, cis, strict=True)],
        ]
    )
    ax.bar(x, values, yerr=np.clip(err, 0, None), capsize=5, color="#4C72B0")
    if target is not None:
        ax.axhline(target, color="#C44E52", linestyle="--", label=f"target {target:.3g}")
        ax.legend()
    ax.set_xticks(x, names, rotation=20, ha="right")
    ax.set_ylabel(metric)
    ax.set_ylim(0, 1.05)
    ax.set_title(f"{metric} per rung (95% bootstrap interval)")
    return _png(fig)


def latency(names: list[str], p50: list[float], p95: list[float]) -> bytes:
    fig, ax = plt.subplots(figsize=(max(5, 1.3 * len(names)), 3.4))
    x = np.arange(len(names))
    ax.bar(x - 0.2, p50, 0.4, label="p50", color="#55A868")
    ax.bar(x + 0.2, p95, 0.4, label="p95", color="#DD8452")
    ax.set_xticks(x, names, rotation=20, ha="right")
    ax.set_ylabel("ms per request")
    ax.set_title("latency")
    ax.legend()
    return _png(fig)


def cost(names: list[str], per_1k: list[float]) -> bytes:
    fig, ax = plt.subplots(figsize=(max(5, 1.3 * len(names)), 3.4))
    ax.bar(np.arange(len(names)), per_1k, color="#8172B2")
    ax.set_xticks(np.arange(len(names)), names, rotation=20, ha="right")
    ax.set_ylabel("US$ per 1,000 requests")
    ax.set_title("serving cost")
    return _png(fig)


def loss_curve(points: list[tuple[int, float]]) -> bytes:
    fig, ax = plt.subplots(figsize=(5.5, 3.2))
    steps, losses = zip(*points, strict=True)
    ax.plot(steps, losses, marker="o", markersize=3)
    ax.set_xlabel("step")
    ax.set_ylabel("training loss")
    ax.set_title("fine-tune: training loss")
    return _png(fig)


def confusion(preds: list, refs: list[str], labels: list[str], title: str) -> bytes:
    norm = {normalise(label): i for i, label in enumerate(labels)}
    other = len(labels)
    m = np.zeros((len(labels), len(labels) + 1), dtype=int)
    for p, r in zip(preds, refs, strict=True):
        ri = norm.get(normalise(r))
        if ri is None:
            continue
        pi = norm.get(normalise(str(p))) if p is not None else None
        m[ri, other if pi is None else pi] += 1
    size = max(4.5, 0.32 * len(labels) + 2)
    fig, ax = plt.subplots(figsize=(size + 0.6, size))
    ax.imshow(m, cmap="Blues")
    ax.set_xticks(range(other + 1), labels + ["(none)"], rotation=90, fontsize=7)
    ax.set_yticks(range(other), labels, fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("reference")
    if len(labels) <= 15:
        for i in range(m.shape[0]):
            for j in range(m.shape[1]):
                if m[i, j]:
                    ax.text(
                        j,
                        i,
                        str(m[i, j]),
                        ha="center",
                        va="center",
                        fontsize=7,
                        color="white" if m[i, j] > m.max() / 2 else "black",
                    )
    ax.set_title(title)
    return _png(fig)


def reliability(names: list[str], bins: list[list[dict]]) -> bytes:
    """Reliability diagram: accuracy against mean confidence per bin, one line per rung; the diagonal is ideal."""
    fig, ax = plt.subplots(figsize=(5.2, 4.2))
    ax.plot([0, 1], [0, 1], color="#999", linestyle="--", linewidth=1, label="perfectly calibrated")
    for name, bs in zip(names, bins, strict=True):
        pts = [(b["confidence"], b["accuracy"], b["n"]) for b in bs if b["n"]]
        if pts:
            x, y, n = zip(*pts, strict=True)
            ax.plot(x, y, marker="o", label=name)
            # Marker area follows the bin's share of items: a point from 2 items counts for little.
            ax.scatter(x, y, s=[20 + 200 * k / sum(n) for k in n], alpha=0.3)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("confidence (top label probability)")
    ax.set_ylabel("accuracy")
    ax.set_title("reliability (10 equal-width bins)")
    ax.legend(fontsize=7)
    return _png(fig)


def coverage(names: list[str], curves: list[list[dict]]) -> bytes:
    """Accuracy of the answered items against the share answered, abstaining below a confidence threshold."""
    fig, ax = plt.subplots(figsize=(5.2, 4.2))
    for name, pts in zip(names, curves, strict=True):
        kept = [(p["coverage"], p["accuracy"]) for p in pts if p["accuracy"] is not None]
        if kept:
            x, y = zip(*kept, strict=True)
            ax.plot(x, y, marker=".", label=name)
    ax.set_xlim(0, 1.02)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("coverage (share answered; the rest go to a person)")
    ax.set_ylabel("accuracy on the answered")
    ax.set_title("accuracy vs coverage")
    ax.legend(fontsize=7)
    return _png(fig)
