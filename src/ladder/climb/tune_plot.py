"""The fine-tune rung's curve: training loss with the task metric on the validation slice and the best checkpoint."""

from __future__ import annotations

from ladder.climb.plots import _png, plt

NAMES = {"valid_accuracy": "validation accuracy", "valid_f1": "validation field F1"}


def validation_curve(
    loss: list[tuple[int, float]], name: str, points: list[tuple[int, float]], best_step: int | None = None
) -> bytes:
    """PNG bytes: loss (left axis), the metric per eval (right axis, 0-1), a line at the returned checkpoint."""
    fig, ax = plt.subplots(figsize=(5.5, 3.2))
    if loss:
        steps, values = zip(*loss, strict=True)
        ax.plot(steps, values, marker="o", markersize=2, color="#4C72B0", label="training loss")
    ax.set_xlabel("step")
    ax.set_ylabel("training loss", color="#4C72B0")
    right = ax.twinx()
    steps, values = zip(*points, strict=True)
    label = NAMES.get(name, name)
    right.plot(steps, values, marker="s", markersize=4, color="#C44E52", label=label)
    right.set_ylim(0, 1.02)
    right.set_ylabel(label, color="#C44E52")
    if best_step:
        ax.axvline(best_step, color="#55A868", linestyle="--", linewidth=1)
        right.annotate("returned", (best_step, 1.0), color="#55A868", fontsize=8, ha="left", va="top")
    ax.set_title(f"fine-tune: training loss and {label}")
    return _png(fig)
