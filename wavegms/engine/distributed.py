"""Data-parallel training with PyTorch's own engine (DistributedDataParallel under ``torchrun``).

``torchrun --nproc_per_node=N -m wavegms train ...`` starts N processes and sets ``WORLD_SIZE``,
``RANK`` and ``LOCAL_RANK``; :func:`setup` sees them and joins the process group (NCCL on CUDA,
gloo on CPU). A plain ``wavegms train`` is a world of one and touches nothing distributed.
Rank 0 validates, writes checkpoints and shows progress; the others wait at barriers.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn


@dataclass(frozen=True)
class World:
    """This process's place among the training processes."""

    rank: int = 0
    local_rank: int = 0
    size: int = 1
    owns_group: bool = False  # this program started the process group (and ends it)

    @property
    def distributed(self) -> bool:
        return self.size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def world_from_env() -> World:
    """The :class:`World` described by torchrun's environment variables (a world of one without)."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size <= 1:
        return World()
    return World(int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0")), size)


def setup(device: torch.device) -> tuple[World, torch.device]:
    """Join the process group when launched by torchrun; returns the world and this rank's device.

    Each rank drives its own GPU, ``cuda:LOCAL_RANK``, whatever index the device asked for
    carries (a notebook saves ``cuda:0``, a user may pass ``--device cuda:0``): under torchrun
    the launcher, not the setting, says which GPU is this rank's.
    """
    world = world_from_env()
    if not world.distributed:
        return world, device
    if device.type == "cuda":
        device = torch.device("cuda", world.local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        world = dataclasses.replace(world, owns_group=True)
    return world, device


def cleanup(world: World, succeeded: bool = True) -> None:
    """Leave the process group if :func:`setup` started it (a launcher's own group is kept).

    After a success every rank first meets at a barrier: ranks that tear the group down at
    different moments can hang in ``destroy_process_group`` (seen with gloo on a busy CPU).
    After a failure the other ranks may be stuck in a collective, so no barrier then.
    """
    if world.owns_group and dist.is_initialized():
        if succeeded:
            dist.barrier()
        dist.destroy_process_group()


def barrier(world: World) -> None:
    if world.distributed:
        dist.barrier()


def wrap(model: nn.Module, world: World, device: torch.device) -> nn.Module:
    """``model`` wrapped in DistributedDataParallel in a world of several, else ``model``.

    Every trainable parameter receives a gradient in every step, so DDP need not search for
    unused ones (``find_unused_parameters=False``, the fast path).
    """
    if not world.distributed:
        return model
    device_ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(
        model, device_ids=device_ids, find_unused_parameters=False
    )


def all_reduce_sum(tensor: torch.Tensor, world: World) -> torch.Tensor:
    """The sum of ``tensor`` over all ranks (in place; unchanged in a world of one)."""
    if world.distributed:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def broadcast(obj: Any, world: World) -> Any:
    """Rank 0's ``obj`` on every rank (a picklable Python value produced by this program)."""
    if not world.distributed:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def check_ranks_agree(model: nn.Module, world: World, device: torch.device) -> None:
    """Raise ``RuntimeError`` unless every rank holds the same weights (DDP keeps them equal)."""
    if not world.distributed:
        return
    with torch.no_grad():
        flat = torch.cat([p.detach().float().flatten() for p in model.parameters()])
        # Two different weightings: a sum alone would miss permuted or offsetting differences.
        ramp = torch.linspace(1, 2, flat.numel(), device=flat.device)
        mine = torch.stack([flat.double().sum(), (flat * ramp).double().sum()]).to(device)
    gathered = [torch.empty_like(mine) for _ in range(world.size)]
    dist.all_gather(gathered, mine)
    if any(not torch.equal(gathered[0], other) for other in gathered[1:]):
        raise RuntimeError(
            f"The {world.size} training processes ended with different weights "
            f"({[g.tolist() for g in gathered]}); the data-parallel run is not consistent."
        )


__all__ = [
    "World",
    "all_reduce_sum",
    "barrier",
    "broadcast",
    "check_ranks_agree",
    "cleanup",
    "setup",
    "world_from_env",
]
