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
from matplotlib.patches import FancyBboxPatch

from ..utils.atomic import atomic_write_bytes

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


def plot_pipeline() -> Figure:
    """The Wave-GMS pipeline as one diagram: what is trained (blue), what is frozen (grey), and
    where each term of the objective compares what (dashed, training only). Tensor shapes are
    for an ``[B, 3, H, W]`` input; the latent grid is H/8 x W/8."""
    trained, frozen, loss = "#cfe2ff", "#e3e3e3", "#ffe0cc"
    fig = Figure(figsize=(11, 4.6))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, 110)
    ax.set_ylim(0, 46)
    ax.set_axis_off()

    def box(x, y, w, h, text, color, size=8):  # noqa: ANN001, ANN202
        ax.add_patch(
            FancyBboxPatch(
                (x, y), w, h, boxstyle="round,pad=0.4", facecolor=color, edgecolor="#444"
            )
        )
        ax.text(x + w / 2, y + h / 2, text, ha="center", va="center", fontsize=size)
        return (x, y, w, h)

    def arrow(start, end, dashed=False):  # noqa: ANN001, ANN202
        ax.annotate(
            "",
            xy=end,
            xytext=start,
            arrowprops={"arrowstyle": "-|>", "color": "#333", "linestyle": "--" if dashed else "-"},
        )

    box(0.5, 19, 8, 8, "image\n[3, H, W]", "white")
    box(12, 19, 10, 8, "Haar pyramid\n3 levels\n12 ch each", "white")
    for k, y in enumerate((31, 21, 11)):
        box(26, y, 12, 5, f"extractor L{k + 1}\nH/{2 ** (k + 1)}", trained, 7)
        arrow((22.6, 23), (25.5, y + 2.5))
        arrow((38.6, y + 2.5), (41.5, 23))
    box(42, 19, 10, 8, "aggregator\nto H/8", trained)
    box(56, 19, 9, 8, "mu, logvar\n[4, H/8, W/8]\nz = mu (+ noise\nin training)", trained, 7)
    box(
        69,
        17,
        13,
        12,
        "LMM\nresidual blocks\n+ self-attention\nheads: level2,\nlevel1, out",
        trained,
        7,
    )
    box(86, 19, 10, 8, "TAESD\ndecoder\n(frozen)", frozen)
    box(100, 19, 8, 8, "mask\n[1, H, W]", "white")
    for start, end in (((8.9, 23), (11.5, 23)), ((52.6, 23), (55.5, 23)), ((65.6, 23), (68.5, 23))):
        arrow(start, end)
    arrow((82.6, 23), (85.5, 23))
    arrow((96.6, 23), (99.5, 23))
    # Training only: TAESD's encoder gives the targets, three terms compare.
    box(12, 2, 16, 6, "TAESD encoder (frozen)\nimage -> teacher latent", frozen, 7)
    box(69, 2, 16, 6, "TAESD encoder (frozen)\nmask -> target latent", frozen, 7)
    box(40, 2, 24, 6, "align: 0.9 (1 - cos) + 0.1 SmoothL1\nof z vs the teacher latent", loss, 7)
    box(88, 38, 20, 5, "mask: soft Dice of each\ndecoded head vs the mask", loss, 7)
    box(88, 2, 20, 6, "latent: MSE of each\nhead vs target latent", loss, 7)
    arrow((28.5, 5), (39.5, 5), dashed=True)
    arrow((60, 18.5), (54, 8.5), dashed=True)
    arrow((91, 27.5), (96, 37.5), dashed=True)
    arrow((85.5, 5), (87.5, 5), dashed=True)
    arrow((79, 16.5), (92, 8.5), dashed=True)
    ax.text(
        1,
        44,
        "Wave-GMS: blue is trained (2.6M parameters), grey is frozen TAESD (2.4M); "
        "dashed: training only (loss = latent + mask + align)",
        fontsize=8,
        va="center",
    )
    return fig


def save_figure(fig: Figure, path: str | Path, dpi: int = 110) -> Path:
    """Write ``fig`` as a PNG atomically (temp file + rename) and return the path."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    path = Path(path)
    atomic_write_bytes(path, buffer.getvalue())
    return path


__all__ = [
    "overlay",
    "plot_cases",
    "plot_pipeline",
    "save_figure",
    "to_numpy_image",
    "to_numpy_mask",
]
