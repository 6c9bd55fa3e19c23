"""The data loaders of a training run: the shuffled training loader (split over the processes
under ``torchrun``) and the evaluation loaders."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from torch.utils.data import DataLoader, DistributedSampler

if TYPE_CHECKING:
    from ..config import TrainConfig
    from ..distributed import World


def training_loader(
    dataset: Any, config: TrainConfig, world: World, device: torch.device
) -> tuple[DataLoader, DistributedSampler | None, torch.Generator]:
    """The training loader, its distributed sampler (None on one process) and the generator
    that shuffles it (reseeded every epoch)."""
    if len(dataset) == 0:
        raise ValueError(f"The training split of {config.dataset} is empty.")
    sampler = (
        DistributedSampler(dataset, world.size, world.rank, seed=config.seed)
        if world.distributed
        else None
    )
    shuffle = torch.Generator()
    loader = _loader(
        dataset,
        config.batch_size // world.size,
        config,
        device,
        persistent=True,  # the training loader runs every epoch: keep its workers
        sampler=sampler,
        shuffle=sampler is None,
        generator=shuffle,
    )
    return loader, sampler, shuffle


def evaluation_loaders(
    datasets: dict[str, Any], config: TrainConfig, device: torch.device
) -> dict[str, DataLoader]:
    """Validation (and test, when selecting on it) loaders; the selection split must exist."""
    parts = ["val", "test"] if config.selection == "test" else ["val"]
    loaders = {
        part: _loader(datasets[part], config.batch_size, config, device)
        for part in parts
        if len(datasets[part])
    }
    if config.selection not in loaders:
        raise ValueError(
            f"The {config.selection} split is empty: nothing to select the best model on."
        )
    return loaders


def _loader(
    dataset: Any,
    batch_size: int,
    config: TrainConfig,
    device: torch.device,
    persistent: bool = False,
    **kwargs: Any,
) -> DataLoader:
    # Pinned memory + non_blocking copies overlap host-to-GPU transfers with compute.
    return DataLoader(
        dataset,
        batch_size=batch_size,
        num_workers=config.num_workers,
        pin_memory=device.type == "cuda",
        persistent_workers=persistent and config.num_workers > 0,
        **kwargs,
    )


__all__ = ["evaluation_loaders", "training_loader"]
