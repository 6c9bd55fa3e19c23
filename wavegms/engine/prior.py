"""The best constant prediction: what a model scores by knowing only *where* masks usually are.

A model that predicts the same mask for every image has learned the location prior of its
training data and nothing about appearance. Its best version is the training split's mean mask
thresholded at the level that maximises the mean Dice on the training split;
:func:`prior_dice` scores it on other images, the baseline a real model must clearly beat.
Dice follows the empty-mask rules of ``docs/paper_map.md`` (Metrics) as
:func:`wavegms.engine.metrics.dice_iou` does: both empty -> 1, one empty -> 0.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load, save

from ..utils.atomic import atomic_write_bytes
from ..utils.errors import read_bytes
from .metrics import dice_iou


def _masks(masks: torch.Tensor, name: str) -> torch.Tensor:
    if masks.ndim != 4 or masks.shape[1] != 1 or len(masks) == 0:
        raise ValueError(
            f"{name} must be binary masks [N, 1, H, W], N >= 1; got {tuple(masks.shape)}"
        )
    return masks > 0.5


def constant_mask_prior(train_masks: torch.Tensor) -> tuple[torch.Tensor, float]:
    """The training split's mean mask and the threshold that makes it the best constant mask.

    Args:
        train_masks: ``[N, 1, H, W]`` binary masks (bool or {0, 1}) of the training split.

    Returns:
        ``(mean_mask, threshold)``: ``mean_mask`` float ``[1, H, W]`` in [0, 1] (the fraction of
        training masks covering each pixel), and ``threshold`` in [-1, 1] such that the constant
        prediction ``mean_mask > threshold`` has the highest mean Dice over the training masks
        (ties: the lowest threshold). ``-1`` predicts every pixel; the mean mask's maximum
        predicts nothing (best when most masks are empty).
    """
    masks = _masks(train_masks, "train_masks").flatten(1)
    mean = masks.float().mean(0)
    # Only the mean mask's own values change the prediction. The prediction for threshold t is
    # the k(t) pixels of highest mean, so a cumulative sum over pixels sorted by mean gives every
    # candidate's intersection with every mask at once: O(N * H * W), not times the candidates.
    thresholds = torch.cat([torch.tensor([-1.0]), mean.unique()])
    sizes = (mean[None] > thresholds[:, None]).sum(1)  # [K] predicted pixels, decreasing
    covered = masks[:, mean.argsort(descending=True)].cumsum(1, dtype=torch.float64)
    covered = torch.cat([torch.zeros(len(masks), 1, dtype=torch.float64), covered], 1)
    intersection = covered[:, sizes]  # [N, K]
    total = sizes[None].double() + masks.sum(1, keepdim=True).double()
    # As wavegms.engine.metrics.dice_iou: both empty -> 1.
    dice = torch.where(total == 0, 1.0, 2 * intersection / total.clamp(min=1)).mean(0)
    best = int(dice.argmax())
    return mean.view_as(train_masks[0]).clone(), float(thresholds[best])


def prior_dice(mean_mask: torch.Tensor, threshold: float, masks: torch.Tensor) -> torch.Tensor:
    """Per-image Dice ``[N]`` of the constant prediction ``mean_mask > threshold`` against
    ``masks`` ``[N, 1, H, W]`` (binary, same ``H, W`` as ``mean_mask [1, H, W]``)."""
    masks = _masks(masks, "masks")
    if tuple(mean_mask.shape) != tuple(masks.shape[1:]):
        raise ValueError(
            f"mean_mask {tuple(mean_mask.shape)} and masks {tuple(masks.shape)} differ in size"
        )
    prediction = (mean_mask > threshold).expand_as(masks)
    return dice_iou(prediction, masks)[0]


PRIOR_FILE = "prior.safetensors"


def save_prior(folder: str | Path, mean_mask: torch.Tensor, threshold: float) -> Path:
    """Store a constant-mask prior beside a checkpoint (``folder/prior.safetensors``), so that
    the baseline can be scored where the training data is not at hand (a shipped model)."""
    path = Path(folder) / PRIOR_FILE
    tensors = {"mean_mask": mean_mask.float().contiguous(), "threshold": torch.tensor(threshold)}
    atomic_write_bytes(path, save(tensors))
    return path


def load_prior(folder: str | Path, image_size: int | None = None) -> tuple[torch.Tensor, float]:
    """The prior saved by :func:`save_prior`, its mean mask resized to ``image_size`` if given.

    Raises:
        FileNotFoundError: ``folder`` has no ``prior.safetensors``.
    """
    tensors = load(read_bytes(Path(folder) / PRIOR_FILE))  # read_bytes: says why it cannot
    mean = tensors["mean_mask"]
    if image_size is not None and mean.shape[-1] != image_size:
        mean = F.interpolate(mean[None], size=(image_size, image_size), mode="bilinear")[0]
    return mean, float(tensors["threshold"])


__all__ = ["PRIOR_FILE", "constant_mask_prior", "load_prior", "prior_dice", "save_prior"]
