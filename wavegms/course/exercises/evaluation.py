"""The checks of notebook 04 (evaluation): Dice and IoU, HD95 with the empty-mask rules, the
threshold sweep, and the mean against the pooled Dice.

Each ``check_*`` takes the student's answer (a value, or the function they wrote), computes
the reference itself (:mod:`wavegms.engine.metrics`, on masks it draws) and prints one verdict
line.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from ...engine.metrics import dice_iou, hd95, segmentation_metrics, summarize
from . import as_floats, call, check

SIZE = 48  # side of the masks the checks draw


def disk(cx: float, cy: float, r: float, size: int = SIZE) -> torch.Tensor:
    """A filled disk: bool ``[size, size]``, centre ``(cx, cy)`` (column, row), radius ``r``."""
    y, x = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    return (x - cx) ** 2 + (y - cy) ** 2 <= r**2


def mask_pairs() -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Named ``(prediction, truth)`` pairs, bool ``[SIZE, SIZE]``: every empty-mask case and
    overlapping shapes, none touching the border (where definitions of the outline differ)."""
    empty = torch.zeros(SIZE, SIZE, dtype=torch.bool)
    truth = disk(22, 24, 10)
    stray = disk(23, 25, 9)
    stray[3:6, 40:43] = True  # a 3 x 3 false alarm far from the lesion
    ellipse = ((torch.arange(SIZE)[:, None] - 20) / 6) ** 2 + (
        (torch.arange(SIZE)[None] - 25) / 14
    ) ** 2 <= 1
    return {
        "both empty": (empty, empty),
        "a false alarm (truth empty)": (disk(30, 30, 5), empty),
        "a missed lesion (prediction empty)": (empty, truth),
        "a perfect prediction": (truth, truth.clone()),
        "a shifted disk": (disk(26, 24, 10), truth),
        "a disk with a stray blob": (stray, truth),
        "an ellipse for a disk": (ellipse, truth),
        "no overlap": (disk(10, 10, 4), disk(36, 36, 6)),
    }


def _batched(mask: torch.Tensor) -> torch.Tensor:
    return mask[None, None]


def _run_on_pairs(
    function: Callable[..., Any],
    expected: Callable[[torch.Tensor, torch.Tensor], list[float]],
    what: str,
) -> bool | str:
    """Compare ``function(pred, truth)`` with ``expected`` on every :func:`mask_pairs` case."""
    for case, (pred, truth) in mask_pairs().items():
        reference = expected(pred, truth)
        mine = as_floats(call(function, pred.clone(), truth.clone()), what)
        if len(mine) != len(reference):
            return f"{what}: {len(reference)} number(s) expected, got {len(mine)}"
        if not all(abs(a - b) <= 1e-4 + 1e-4 * abs(b) for a, b in zip(mine, reference)):
            shown = ", ".join(f"{v:.4g}" for v in mine)
            wanted = ", ".join(f"{v:.4g}" for v in reference)
            return f"for {case}: you gave {shown}, expected {wanted}"
    return True


# ---- Exercise: Dice and IoU ------------------------------------------------------------------


def check_dice_iou(dice_and_iou: Callable[..., Any], name: str = "Exercise 1") -> None:
    """Check ``dice_and_iou(pred, truth) -> (dice, iou)`` (bool ``[H, W]`` masks) against
    :func:`wavegms.engine.metrics.dice_iou` on every :func:`mask_pairs` case."""

    def expected(pred: torch.Tensor, truth: torch.Tensor) -> list[float]:
        dice, iou = dice_iou(_batched(pred), _batched(truth))
        return [dice.item(), iou.item()]

    check(
        name,
        dice_and_iou,
        lambda function: _run_on_pairs(function, expected, "(dice, iou)"),
        success="Your Dice and IoU equal wavegms.engine.metrics.dice_iou, empty masks included.",
    )


# ---- Exercise: HD95 --------------------------------------------------------------------------


def check_hd95(hd95_by_hand: Callable[..., Any], name: str = "Exercise 2") -> None:
    """Check ``hd95_by_hand(pred, truth) -> float`` (bool ``[H, W]`` masks, pixels) against
    :func:`wavegms.engine.metrics.hd95` on every :func:`mask_pairs` case."""

    def expected(pred: torch.Tensor, truth: torch.Tensor) -> list[float]:
        return [hd95(_batched(pred), _batched(truth)).item()]

    check(
        name,
        hd95_by_hand,
        lambda function: _run_on_pairs(function, expected, "HD95"),
        success="Your HD95 equals wavegms.engine.metrics.hd95, empty masks included.",
    )


# ---- Exercise: the threshold sweep -----------------------------------------------------------


def thresholds() -> list[float]:
    """0.1, 0.2, ..., 0.9."""
    return [round(0.1 * k, 1) for k in range(1, 10)]


def check_threshold_sweep(
    means: Any,  # noqa: ANN401
    probs: torch.Tensor,
    masks: torch.Tensor,
    name: str = "Exercise 3",
) -> None:
    """Check the mean Dice of ``probs [N, 1, H, W]`` against ``masks`` at each of
    :func:`thresholds`, recomputed here."""
    truth = masks > 0.5
    expected = [dice_iou(probs > t, truth)[0].mean().item() for t in thresholds()]

    def test(answer: Any) -> bool | str:  # noqa: ANN401
        values = as_floats(answer, "means")
        if len(values) != len(expected):
            return f"one mean Dice per threshold 0.1, ..., 0.9: 9 numbers, not {len(values)}"
        for t, mine, wanted in zip(thresholds(), values, expected):
            if abs(mine - wanted) > 1e-5:
                return f"at threshold {t}: {mine:.4f}, expected {wanted:.4f}"
        return True

    check(name, means, test)


# ---- Exercise: the mean and the pooled Dice --------------------------------------------------


def two_images(pair: Any) -> tuple[torch.Tensor, torch.Tensor]:  # noqa: ANN401
    """``(predictions, truths)`` as bool ``[2, 1, H, W]`` masks, from ``[2, 1, H, W]`` or
    ``[2, H, W]`` tensors or arrays, or lists of two ``[H, W]`` masks."""
    preds, truths = pair
    found = []
    for masks in (preds, truths):
        if isinstance(masks, list | tuple):
            masks = torch.stack([torch.as_tensor(m) for m in masks])
        masks = torch.as_tensor(masks)
        if masks.ndim < 2 or masks.numel() != 2 * masks.shape[-2] * masks.shape[-1]:
            raise ValueError(f"two masks expected in each, got shape {tuple(masks.shape)}")
        found.append(masks.reshape(2, 1, *masks.shape[-2:]) > 0.5)
    return found[0], found[1]


def check_mean_vs_pooled(answer: Any, name: str = "Exercise 4") -> None:  # noqa: ANN401
    """Check ``(predictions, truths)``, two images each (see :func:`two_images`): a large
    lesion segmented well (Dice >= 0.9) and a lesion at least ten times smaller missed
    completely. The metrics are recomputed here from the masks."""

    def test(pair: Any) -> bool | str:  # noqa: ANN401
        preds, truths = two_images(pair)
        sizes = truths.flatten(1).sum(1).tolist()
        if not sizes[1] > 0 or sizes[0] < 10 * sizes[1]:
            return (
                f"the true lesions cover {sizes[0]} and {sizes[1]} pixels: make the first at "
                "least ten times larger than the second (which must not be empty)"
            )
        if preds[1].any():
            return "the second (tiny) lesion must be missed completely: predict nothing there"
        dice = dice_iou(preds, truths)[0][0].item()
        return True if dice >= 0.9 else f"the large lesion's Dice is {dice:.3f}: make it >= 0.9"

    def success(pair: Any) -> str:  # noqa: ANN401
        totals = summarize(segmentation_metrics(*(m.float() for m in two_images(pair))))
        return f"Mean Dice {totals['dice_mean']:.3f}, pooled Dice {totals['dice_pooled']:.3f}."

    check(name, answer, test, success=success)


__all__ = [
    "SIZE",
    "check_dice_iou",
    "check_hd95",
    "check_mean_vs_pooled",
    "check_threshold_sweep",
    "disk",
    "mask_pairs",
    "thresholds",
    "two_images",
]
