"""What a training epoch measures, for its record in ``log.jsonl``: the mean training losses
over all processes (:func:`epoch_losses`) and, on rank 0, Dice and IoU on the evaluation splits
(:func:`validate`)."""

from __future__ import annotations

import math
import time
from typing import Any

import torch
from torch.utils.data import DataLoader

from ..model import WaveGMS
from . import distributed
from .config import TrainConfig
from .metrics import dice_iou

LOSS_KEYS = ("total", "latent", "mask", "align")  # the terms of WaveGMSLoss, in log order


def epoch_losses(
    epoch: int, lr: float, sums: torch.Tensor, items: int, world: distributed.World
) -> dict[str, Any]:
    """The record of 0-based ``epoch``: its learning rate ``lr`` and its mean losses over all
    processes, from ``sums`` (each of :data:`LOSS_KEYS` summed over the ``items`` this process
    trained on, on the device). This is the epoch's one host-device sync.

    Raises:
        RuntimeError: the loss is not finite (training diverged), saying what to change.
    """
    totals = distributed.all_reduce_sum(torch.cat([sums, sums.new_tensor([items])]), world)
    means = (totals[:-1] / totals[-1]).tolist()
    if not math.isfinite(means[0]):
        raise RuntimeError(
            f"The training loss became {means[0]} in epoch {epoch + 1}: training diverged. "
            "Lower --lr, or use --precision fp32 if mixed precision is on."
        )
    names = [f"train_{'loss' if key == 'total' else key}" for key in LOSS_KEYS]
    return {"epoch": epoch + 1, "lr": lr, **dict(zip(names, means))}


@torch.no_grad()
def validate(
    model: WaveGMS,
    loaders: dict[str, DataLoader],
    config: TrainConfig,
    device: torch.device,
    memory_format: torch.memory_format = torch.contiguous_format,
) -> dict[str, Any]:
    """Mean Dice and IoU at threshold 0.5 (empty/empty = 1) on each of ``loaders`` (batches of
    ``image [B, 3, H, W]`` in [0, 1] and ``mask [B, 1, H, W]`` in {0, 1}): ``<part>_dice`` and
    ``<part>_iou`` for each loader's name, ``selected_on`` and ``val_time_s``."""
    started = time.perf_counter()
    model.eval()
    record: dict[str, Any] = {}
    for part, loader in loaders.items():
        dice, iou = [], []
        for batch in loader:
            images = batch["image"].to(device, non_blocking=True)
            probs = model.predict(images.contiguous(memory_format=memory_format), config.precision)
            d, i = dice_iou(probs > 0.5, batch["mask"].to(device, non_blocking=True) > 0.5)
            dice.append(d)
            iou.append(i)
        record[f"{part}_dice"] = torch.cat(dice).mean().item()
        record[f"{part}_iou"] = torch.cat(iou).mean().item()
    record["selected_on"] = config.selection
    record["val_time_s"] = time.perf_counter() - started
    return record


__all__ = ["LOSS_KEYS", "epoch_losses", "validate"]
