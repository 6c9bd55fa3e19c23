"""Per-image segmentation metrics with explicit empty-mask rules (docs/paper_map.md, "Metrics").

Every function takes binary masks ``[B, 1, H, W]`` (bool, or {0, 1} numbers) and returns one value
per image ``[B]``:

* :func:`dice_iou` - Dice and IoU, vectorised on the masks' device with no host sync, so the
  training loop can call it every validation batch. Both empty -> 1; exactly one empty -> 0.
* :func:`hd95` - the 95th-percentile symmetric Hausdorff distance in pixels, computed by MONAI
  (:func:`monai.metrics.compute_hausdorff_distance`). Both empty -> 0; exactly one empty -> the
  image diagonal, the worst case (MONAI itself gives inf / nan there).
* :func:`segmentation_metrics` - all of them from probabilities, plus the counts that
  :func:`summarize` needs for the pooled (dataset-level) Dice.
"""

from __future__ import annotations

import math
import warnings

import torch

METRIC_NAMES = ("dice", "iou", "hd95")


def _binary(mask: torch.Tensor, name: str) -> torch.Tensor:
    if mask.ndim != 4 or mask.shape[1] != 1:
        raise ValueError(f"{name} must be a binary mask [B, 1, H, W], got {tuple(mask.shape)}")
    return mask if mask.dtype == torch.bool else mask > 0.5


def _check_pair(pred: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    pred, target = _binary(pred, "pred"), _binary(target, "target")
    if pred.shape != target.shape:
        raise ValueError(
            f"pred and target shapes differ: {tuple(pred.shape)} vs {tuple(target.shape)}"
        )
    return pred, target.to(pred.device)


def overlap_counts(
    pred: torch.Tensor, target: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-image ``(intersection, pred_size, target_size)`` pixel counts, each float ``[B]``."""
    pred, target = _check_pair(pred, target)
    dims = (1, 2, 3)
    intersection = (pred & target).sum(dims).float()
    return intersection, pred.sum(dims).float(), target.sum(dims).float()


def dice_iou(pred: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-image Dice and IoU of binary masks.

    Args:
        pred, target: ``[B, 1, H, W]`` bool (or {0, 1}; values > 0.5 count as foreground).

    Returns:
        ``(dice, iou)``, each float ``[B]`` in [0, 1] on ``pred``'s device. Both masks empty ->
        1 (a correct "nothing here"); exactly one empty -> 0. No host synchronisation.
    """
    intersection, pred_size, target_size = overlap_counts(pred, target)
    sizes = pred_size + target_size
    union = sizes - intersection
    both_empty = sizes == 0
    # clamp(min=1) only matters where both are empty, and those are overwritten with 1.
    dice = torch.where(both_empty, 1.0, 2 * intersection / sizes.clamp(min=1))
    iou = torch.where(both_empty, 1.0, intersection / union.clamp(min=1))
    return dice, iou


def hd95(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-image 95th-percentile symmetric Hausdorff distance in pixels (MONAI, Euclidean).

    See :func:`hausdorff` (``percentile=95``) for arguments, returns and the empty-mask rules.
    """
    return hausdorff(pred, target, percentile=95)


def hausdorff(
    pred: torch.Tensor, target: torch.Tensor, percentile: float | None = None
) -> torch.Tensor:
    """Per-image symmetric Hausdorff distance in pixels (MONAI, Euclidean): the maximum
    boundary distance, or its ``percentile``.

    Args:
        pred, target: ``[B, 1, H, W]`` bool (or {0, 1}).
        percentile: None for the maximum, or a percentile in [0, 100] (95 for HD95).

    Returns:
        float ``[B]`` on ``pred``'s device, >= 0. Both empty -> 0; exactly one empty ->
        ``sqrt(H^2 + W^2)``, the largest distance possible in the image.
    """
    pred, target = _check_pair(pred, target)
    height, width = pred.shape[-2:]
    pred_any, target_any = pred.flatten(1).any(1), target.flatten(1).any(1)
    result = torch.where(pred_any == target_any, 0.0, math.hypot(height, width))
    both = pred_any & target_any
    if both.any():
        # Imported here: `import monai` loads all of MONAI (about 3 s), and most users of this
        # module (training, the CLI's start-up, the course) only need Dice.
        from monai.metrics import compute_hausdorff_distance

        # MONAI loops over images on the CPU (scipy distance transforms): move once, in a batch.
        with warnings.catch_warnings():
            # MONAI 1.5+ warns about its own internal use of a deprecated argument.
            warnings.filterwarnings("ignore", "monai.metrics.utils", FutureWarning)
            distances = compute_hausdorff_distance(
                pred[both].cpu(),
                target[both].cpu(),
                include_background=True,
                percentile=percentile,
            )
        result[both] = distances[:, 0].to(result)
    return result


def segmentation_metrics(
    probs: torch.Tensor, target: torch.Tensor, threshold: float = 0.5
) -> dict[str, torch.Tensor]:
    """All per-image metrics of probabilities against ground truth.

    Args:
        probs: ``[B, 1, H, W]`` foreground probabilities in [0, 1].
        target: ``[B, 1, H, W]`` binary ground truth.
        threshold: a pixel is foreground where ``probs > threshold``.

    Returns:
        float ``[B]`` tensors on CPU: ``dice``, ``iou``, ``hd95`` (pixels), ``intersection``,
        ``pred_size``, ``target_size`` (pixel counts, for the pooled Dice of :func:`summarize`).
    """
    pred = probs > threshold
    target = _binary(target, "target").to(pred.device)
    dice, iou = dice_iou(pred, target)
    intersection, pred_size, target_size = overlap_counts(pred, target)
    values = {
        "dice": dice,
        "iou": iou,
        "hd95": hd95(pred, target),
        "intersection": intersection,
        "pred_size": pred_size,
        "target_size": target_size,
    }
    return {name: value.cpu() for name, value in values.items()}


def summarize(per_image: dict[str, torch.Tensor]) -> dict[str, float | int]:
    """Dataset summary of per-image metrics (as returned by :func:`segmentation_metrics`,
    possibly concatenated over batches).

    Returns ``{metric}_mean`` and ``{metric}_std`` (population std over images) for Dice, IoU and
    HD95; ``dice_pooled = 2 * sum(intersection) / sum(pred_size + target_size)`` over the whole
    dataset (1.0 when every mask is empty); ``n_images``.
    """
    n_images = len(per_image["dice"])
    if n_images == 0:
        raise ValueError("No images to summarize: the evaluated dataset is empty.")
    summary: dict[str, float | int] = {}
    for name in METRIC_NAMES:
        values = per_image[name].double()
        summary[f"{name}_mean"] = values.mean().item()
        summary[f"{name}_std"] = values.std(unbiased=False).item()
    sizes = (per_image["pred_size"] + per_image["target_size"]).double().sum().item()
    intersection = per_image["intersection"].double().sum().item()
    summary["dice_pooled"] = 2 * intersection / sizes if sizes > 0 else 1.0
    summary["n_images"] = n_images
    return summary


__all__ = [
    "METRIC_NAMES",
    "dice_iou",
    "hd95",
    "overlap_counts",
    "segmentation_metrics",
    "summarize",
]
