"""Figures for evaluation, the notebooks and the demo.

Everything builds a :class:`matplotlib.figure.Figure` directly (no ``pyplot`` global state), so
it works headless, in threads and in notebooks alike (a Figure displays itself in Jupyter).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure

from .atomic import atomic_write_bytes

GT_COLOR = (0.1, 0.85, 0.2)  # green: ground truth
PRED_COLOR = (0.95, 0.2, 0.15)  # red: prediction

ArrayLike = np.ndarray | torch.Tensor


def to_numpy_image(image: ArrayLike) -> np.ndarray:
    """An image as float ``[H, W, 3]`` in [0, 1], from ``[3, H, W]`` / ``[1, H, W]`` tensors or
    ``[H, W]`` / ``[H, W, 3]`` arrays."""
    array = image.detach().float().cpu().numpy() if isinstance(image, torch.Tensor) else image
    array = np.asarray(array, dtype=np.float32)
    if array.ndim == 3 and array.shape[0] in (1, 3) and array.shape[-1] not in (1, 3):
        array = array.transpose(1, 2, 0)  # channels first -> last
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim != 3 or array.shape[-1] not in (1, 3):
        raise ValueError(f"expected an image [H, W, 3] or [3, H, W], got shape {array.shape}")
    return np.clip(np.broadcast_to(array, (*array.shape[:2], 3)), 0.0, 1.0)


def to_numpy_mask(mask: ArrayLike) -> np.ndarray:
    """A mask as bool ``[H, W]`` from ``[1, H, W]`` / ``[H, W]`` tensors or arrays (> 0.5)."""
    array = mask.detach().float().cpu().numpy() if isinstance(mask, torch.Tensor) else mask
    array = np.asarray(array)
    array = array.reshape(array.shape[-2:]) if array.ndim == 3 else array
    return array > 0.5 if array.dtype != bool else array


def overlay(
    image: ArrayLike,
    mask: ArrayLike,
    color: tuple[float, float, float] = PRED_COLOR,
    alpha: float = 0.45,
) -> np.ndarray:
    """Tint ``mask``'s pixels of ``image`` with ``color``.

    Args:
        image: ``[H, W, 3]`` (or ``[3, H, W]``, or grey ``[H, W]``) in [0, 1].
        mask: ``[H, W]`` binary (bool, or > 0.5 is foreground).
        color: RGB in [0, 1].
        alpha: opacity of the tint.

    Returns:
        float32 ``[H, W, 3]`` in [0, 1].
    """
    image, mask = to_numpy_image(image), to_numpy_mask(mask)
    if mask.shape != image.shape[:2]:
        raise ValueError(f"mask {mask.shape} and image {image.shape[:2]} sizes differ")
    out = image.copy()
    out[mask] = (1 - alpha) * out[mask] + alpha * np.asarray(color, dtype=np.float32)
    return out


def plot_cases(
    images: Sequence[ArrayLike],
    gts: Sequence[ArrayLike],
    preds: Sequence[ArrayLike],
    names: Sequence[str],
    scores: Sequence[str | float],
    *,
    title: str | None = None,
    row_labels: Sequence[str] | None = None,
) -> Figure:
    """One row per case: the image, the ground truth (green) and the prediction (red).

    Args:
        images: ``[H, W, 3]`` / ``[3, H, W]`` in [0, 1], one per case.
        gts, preds: binary masks ``[H, W]`` / ``[1, H, W]``, one per case.
        names: item names, shown on each row.
        scores: per case a label (e.g. ``"Dice 0.91, HD95 3.2 px"``) or a Dice value.
        title: the figure's title.
        row_labels: an optional tag per row (e.g. ``"best"`` / ``"worst"``).
    """
    n = len(images)
    if not n or not len(gts) == len(preds) == len(names) == len(scores) == n:
        raise ValueError("plot_cases needs one image, ground truth, prediction, name, score each")
    fig = Figure(figsize=(7.5, 2.5 * n + (0.4 if title else 0)), layout="constrained")
    axes = fig.subplots(n, 3, squeeze=False)
    for row, (image, gt, pred, name, score) in enumerate(zip(images, gts, preds, names, scores)):
        label = f"Dice {score:.3f}" if isinstance(score, float | int) else str(score)
        tag = f"{row_labels[row]}: " if row_labels else ""
        panels = (
            (to_numpy_image(image), f"{tag}{name}"),
            (overlay(image, gt, GT_COLOR), "ground truth"),
            (overlay(image, pred, PRED_COLOR), f"prediction ({label})"),
        )
        for ax, (picture, caption) in zip(axes[row], panels):
            ax.imshow(picture, interpolation="nearest")
            ax.set_title(caption, fontsize=8)
            ax.set_axis_off()
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def save_figure(fig: Figure, path: str | Path, dpi: int = 110) -> Path:
    """Write ``fig`` as a PNG atomically (temp file + rename) and return the path."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    path = Path(path)
    atomic_write_bytes(path, buffer.getvalue())
    return path


__all__ = ["overlay", "plot_cases", "save_figure", "to_numpy_image", "to_numpy_mask"]
