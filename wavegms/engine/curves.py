"""The training-curve figure: losses and validation Dice per epoch, from a run's ``log.jsonl``.

Built on :class:`matplotlib.figure.Figure` directly (no pyplot state), so it works headless, in
worker processes and in notebooks alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from .viz import save_figure

LOSS_KEYS = {
    "train_loss": "total",
    "train_latent": "latent",
    "train_mask": "mask",
    "train_align": "alignment",
}
DICE_KEYS = {"val_dice": "validation", "test_dice": "test (selection split!)"}


def plot_training_curves(
    log_records: Sequence[dict[str, Any]], path: str | Path | None = None
) -> Figure:
    """Plot per-epoch records (the objects of ``log.jsonl``) and optionally save a PNG atomically.

    Args:
        log_records: dicts with ``epoch`` (1-based), the train losses ``train_loss``,
            ``train_latent``, ``train_mask``, ``train_align``, and ``val_dice`` / ``test_dice``
            (None on epochs without validation).
        path: where to write the PNG; nothing is written when None.

    Returns:
        The figure: losses (log scale) on the left, Dice on the right with the best epoch marked.
    """
    fig = Figure(figsize=(10, 3.8), layout="constrained")
    loss_ax, dice_ax = fig.subplots(1, 2)
    losses = []
    for key, label in LOSS_KEYS.items():
        points = _series(log_records, key)
        if points:
            loss_ax.plot(*zip(*points), label=label, lw=2 if key == "train_loss" else 1)
            losses += [value for _, value in points]
    loss_ax.set(xlabel="epoch", ylabel="training loss", title="Training losses")
    if losses and min(losses) > 0:  # the terms span decades
        loss_ax.set_yscale("log")
    for key, label in DICE_KEYS.items():
        points = _series(log_records, key)
        if not points:
            continue
        line = dice_ax.plot(*zip(*points), marker="o", ms=3, label=label)[0]
        best_epoch, best = max(points, key=lambda p: p[1])
        dice_ax.plot([best_epoch], [best], marker="*", ms=12, color=line.get_color(), ls="")
        dice_ax.annotate(
            f"best {best:.3f} (epoch {best_epoch})",
            (best_epoch, best),
            textcoords="offset points",
            xytext=(0, -14),
            ha="center",
            fontsize=8,
        )
    dice_ax.set(xlabel="epoch", ylabel="Dice (threshold 0.5)", title="Dice", ylim=(0, 1.02))
    for ax in (loss_ax, dice_ax):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    if path is not None:
        save_figure(fig, path, dpi=120)
    return fig


def _series(records: Sequence[dict[str, Any]], key: str) -> list[tuple[int, float]]:
    """``(epoch, value)`` for the records where ``key`` has a value."""
    return [(r["epoch"], r[key]) for r in records if r.get(key) is not None]


__all__ = ["plot_training_curves"]
