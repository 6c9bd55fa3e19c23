"""The data of a training run: the datasets a :class:`~wavegms.engine.config.TrainConfig` trains
and validates on, and their loaders (the training loader is split over the processes under
``torchrun``). Training, evaluation, the demo and the notebooks all build them here, so they see
the same items."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from ..data.datasets import SegmentationDataset
from ..data.splits import SPLITS_FILE, Splits, make_splits
from ..data.synthetic import make_synthetic_datasets
from ..utils.device import get_device
from ..utils.threads import loader_workers

if TYPE_CHECKING:
    from .config import TrainConfig
    from .distributed import World

PARTS = ("train", "val", "test")
SYNTHETIC_DATA_SEED = 0  # the synthetic images are the same for every run; `seed` seeds training
CACHE_BYTES = 2e9  # decoded items kept in memory up to this size (each loader process has its own)


def workers(config: TrainConfig, device: torch.device) -> int:
    """The loader processes of ``config`` on ``device``: its ``num_workers``, or when None
    :func:`~wavegms.utils.threads.loader_workers` (none on a CPU)."""
    if config.num_workers is not None:
        return config.num_workers
    return loader_workers(device.type)


def build_datasets(
    config: TrainConfig, run_dir: str | Path | None = None
) -> tuple[dict[str, Dataset], Splits]:
    """The train / val / test datasets of ``config`` and their :class:`Splits`.

    If ``run_dir`` holds a ``splits.json`` (a run being resumed or evaluated), its item lists
    are used; otherwise the splits are made from ``config`` (seeded). Nothing is written: the
    training engine saves ``splits.json`` itself.

    Returns:
        ``({"train", "val", "test"} -> dataset, splits)``; items are dicts with ``image``
        ``[3, S, S]`` in [0, 1], ``mask`` ``[1, S, S]`` in {0, 1} and ``name``.

    Raises:
        FileNotFoundError: a missing dataset folder (the message gives the
            ``python -m data_download`` command that prepares it).
    """
    saved = Path(run_dir) / SPLITS_FILE if run_dir is not None else None
    splits = Splits.load(saved) if saved is not None and saved.is_file() else None
    if config.dataset == "synthetic":
        datasets = make_synthetic_datasets(
            *config.synthetic_sizes,
            image_size=config.image_size,
            kind=config.synthetic_kind,
            seed=SYNTHETIC_DATA_SEED,
        )
        if splits is None:
            splits = Splits(
                *(datasets[part].names for part in PARTS),
                protocol="synthetic",
                seed=SYNTHETIC_DATA_SEED,
                selects_on=config.selection,
                dataset="synthetic",
            )
        return datasets, splits
    root = Path(config.data_dir).expanduser() / config.dataset
    if splits is None:
        # Selecting on test (the paper's protocol) trains on all of train: no validation split.
        splits = make_splits(
            root,
            config.split,
            val_fraction=config.val_fraction if config.selection == "val" else 0.0,
            test_fraction=config.test_fraction,
            seed=config.seed,
        )
        splits.selects_on = config.selection
    parts = {part: getattr(splits, part) for part in PARTS}
    items = sum(len(names) for names in parts.values())
    # The device as named (a saved run's "cuda:0" may be evaluated on a machine without one).
    named = get_device() if config.device == "auto" else torch.device(config.device)
    processes = max(workers(config, named), 1)
    cache = items * 4 * config.image_size**2 * processes <= CACHE_BYTES
    datasets = {
        part: SegmentationDataset(root, names, config.image_size, cache=cache)
        for part, names in parts.items()
    }
    return datasets, splits


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
    processes = workers(config, device)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        num_workers=processes,
        pin_memory=device.type == "cuda",
        persistent_workers=persistent and processes > 0,
        **kwargs,
    )


__all__ = ["build_datasets", "evaluation_loaders", "training_loader", "workers"]
