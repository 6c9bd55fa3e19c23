"""What a training epoch measures, for its record in ``log.jsonl``: the mean training losses
over all processes (:class:`EpochLosses`) and, on rank 0, Dice and IoU on the evaluation splits
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


class EpochLosses:
    """The training losses of each epoch, summed on ``device`` step by step without reading
    anything back, and the epoch's record from them (:meth:`record`).

    With a gradient scaler (fp16: pass the ``optimizer`` it steps), a step whose loss is not
    finite (an fp16 overflow) is left out of the sums, and the record's ``skipped_steps``
    counts the steps whose update the scaler skipped: those, and those whose gradients alone
    overflowed (routine in the first steps, while the scaler lowers its initial scale). Without
    a scaler every step counts: a non-finite loss makes the mean non-finite, and the epoch fails.
    """

    def __init__(self, device: torch.device, optimizer: torch.optim.Optimizer | None) -> None:
        self.skip_overflows = optimizer is not None
        self.sums = torch.zeros(len(LOSS_KEYS) + 2, device=device)  # each term x items; counts
        self.steps = self.updates = 0
        if optimizer is not None:  # the scaler calls optimizer.step() only for finite gradients
            optimizer.register_step_post_hook(self._count_update)

    def _count_update(self, *_: Any) -> None:
        self.updates += 1

    def add(self, losses: dict[str, torch.Tensor], items: int) -> None:
        """Add one step's ``losses`` (0-dim tensors, as :class:`WaveGMSLoss` returns them),
        each the mean over the step's ``items`` images."""
        terms = torch.stack([losses[key].detach().float() for key in LOSS_KEYS])
        self.steps += 1
        if self.skip_overflows:  # on the device: a mask, not a branch on the loss's value
            finite = terms.isfinite().all()
            terms = torch.where(finite, terms, 0.0)
            kept = finite.float()
            self.sums[-2:] += torch.stack([kept * items, 1 - kept])  # items; non-finite steps
        else:
            self.sums[-2] += items
        self.sums[:-2] += terms * items

    def record(self, epoch: int, lr: float, world: distributed.World) -> dict[str, Any]:
        """The record of 0-based ``epoch``, whose steps were added since the last record: its
        learning rate ``lr``, its mean losses over all processes (and ``skipped_steps``, see
        above). This is the epoch's one host-device sync; the sums start again from zero.

        Raises:
            RuntimeError: the mean loss is not finite (training diverged), or every step's loss
                overflowed; saying what to change.
        """
        totals = distributed.all_reduce_sum(self.sums.clone(), world)
        *means, non_finite = torch.cat([totals[:-2] / totals[-2], totals[-1:]]).tolist()
        skipped, self.steps, self.updates = self.steps - self.updates, 0, 0
        self.sums.zero_()
        if not math.isfinite(means[0]):
            if non_finite:
                raise RuntimeError(
                    f"Every training step of epoch {epoch + 1} overflowed in fp16 (a non-finite "
                    "loss): use --precision bf16 or fp32, or lower --lr."
                )
            raise RuntimeError(
                f"The training loss became {means[0]} in epoch {epoch + 1}: training diverged. "
                "Lower --lr, or use --precision fp32 if mixed precision is on."
            )
        names = [f"train_{'loss' if key == 'total' else key}" for key in LOSS_KEYS]
        record = {"epoch": epoch + 1, "lr": lr, **dict(zip(names, means))}
        if self.skip_overflows:  # the same on every process: they step on the same gradients
            record["skipped_steps"] = skipped
        return record


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


__all__ = ["LOSS_KEYS", "EpochLosses", "validate"]
