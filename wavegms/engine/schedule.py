"""Learning-rate schedule: linear warm-up that starts above zero, then cosine to zero.

(docs/paper_map.md, "Training".)

Stepped once per epoch. With ``W`` warm-up epochs and ``E`` epochs in all, epoch ``e`` (0-based)
trains at ``base_lr * lr_factor(e, W, E)``:

    e <  W:  (e + 1) / (W + 1)                             1/(W+1), 2/(W+1), ..., W/(W+1)
    e >= W:  0.5 * (1 + cos(pi * (e - W) / (E - W)))       1 at e = W, decreasing towards 0

so the first epoch already learns (the authors' warm-up starts at 0 and wastes it), the ramp
reaches the base lr at the first epoch after warm-up, and the cosine would reach 0 one epoch after
the last, which therefore still learns a little. The warm-up is capped at ``E - 1`` epochs so that
at least one epoch runs at the base lr.
"""

from __future__ import annotations

import math

import torch
from torch.optim.lr_scheduler import LambdaLR


def lr_factor(epoch: int, warmup_epochs: int, epochs: int) -> float:
    """The multiplier of the base lr for 0-based ``epoch`` of ``epochs`` (see module docstring)."""
    warmup = min(warmup_epochs, epochs - 1)
    if epoch < warmup:
        return (epoch + 1) / (warmup + 1)
    progress = min(epoch - warmup, epochs - warmup) / (epochs - warmup)
    return 0.5 * (1 + math.cos(math.pi * progress))


def warmup_cosine(optimizer: torch.optim.Optimizer, warmup_epochs: int, epochs: int) -> LambdaLR:
    """A per-epoch :class:`LambdaLR` following :func:`lr_factor`; call ``.step()`` after each epoch.

    The factor is a closure, not a callable object, so the scheduler's ``state_dict`` holds only
    its position (``last_epoch``): a resumed run may extend ``epochs`` and gets the new schedule.
    """
    if epochs < 1:
        raise ValueError(f"epochs must be at least 1, got {epochs}")
    return LambdaLR(optimizer, lambda epoch: lr_factor(epoch, warmup_epochs, epochs))


def sync_lr(scheduler: LambdaLR) -> None:
    """Set the optimizer's lr to the scheduler's value for its current epoch.

    Needed after loading a scheduler state under a changed schedule (a run extended on resume):
    the optimizer state carries the lr of the old schedule until the next ``step()``.
    """
    epoch = scheduler.last_epoch
    for group, base_lr, factor in zip(
        scheduler.optimizer.param_groups, scheduler.base_lrs, scheduler.lr_lambdas
    ):
        group["lr"] = base_lr * factor(epoch)
    scheduler._last_lr = [group["lr"] for group in scheduler.optimizer.param_groups]


__all__ = ["lr_factor", "sync_lr", "warmup_cosine"]
