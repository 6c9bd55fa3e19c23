"""Training: the engine (:func:`train`) and the ``wavegms train`` subcommand.

One epoch, as the code below runs it::

    reseed from (seed, epoch, rank)            -> shuffling, augmentation, reparameterisation
    for each batch: augment on the device, forward under autocast, SPEC objective, AdamW step
    loss sums stay on the device; read once per epoch
    validate every ``val_every`` epochs (rank 0), keep ``best`` (by validation Dice) and ``last``
    write last/training_state.pt, then log.jsonl

Because all randomness of an epoch derives from ``(seed, epoch, rank)`` and ``last/`` is written
after every epoch, ``--resume`` continues exactly where a run stopped, and an interruption
loses at most the epoch in flight.

Under ``torchrun`` the same command trains data-parallel (:mod:`wavegms.distributed`):
``batch_size`` is the *global* batch, split evenly over the processes, so the paper's batch 12
and lr 2e-3 mean the same on one GPU or several.
"""

from __future__ import annotations

import argparse
import functools
import gc
import json
import math
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler
from tqdm.auto import tqdm

from . import distributed
from .checkpoint import (
    LOG,
    METRICS,
    SPLITS,
    TRAIN_CONFIG,
    TRAINING_STATE,
    atomic_torch_save,
    atomic_write_json,
    atomic_write_text,
    load_training_state,
)
from .config import PRESETS, SOURCES, TrainConfig, preset
from .curves import plot_training_curves
from .data import Augment, SegmentationDataset, Splits, make_splits, make_synthetic_datasets
from .device import PRECISIONS, autocast, get_device, resolve_precision
from .losses import WaveGMSLoss
from .metrics import dice_iou
from .model import WaveGMS
from .schedule import sync_lr, warmup_cosine
from .tiny_vae import load_tiny_vae

if TYPE_CHECKING:
    from diffusers import AutoencoderTiny

LOSS_KEYS = ("total", "latent", "mask", "align")
# Settings a resumed run may change: extending the schedule, or moving to another machine.
RESUMABLE = ("epochs", "num_workers", "device", "taesd", "data_dir", "notes")
CACHE_BYTES = 2e9
SYNTHETIC_DATA_SEED = 0  # the synthetic images are the same for every run; `seed` seeds training
TEST_SELECTION_WARNING = (
    "the checkpoint is selected on the TEST split (paper protocol): its test scores are "
    "optimistic; select on validation for an honest estimate"
)


@dataclass
class TrainResult:
    """What :func:`train` returns.

    Attributes:
        run_dir: the run folder.
        best_dice: best Dice at threshold 0.5 on the selection split (``selected_on``); None if
            no epoch was validated.
        best_epoch: the 1-based epoch of ``best`` (None if none).
        selected_on: ``"val"``, or ``"test"`` for the paper-comparable (optimistic) protocol.
        history: one record per epoch, as in ``log.jsonl``.
        best_checkpoint, last_checkpoint: folders loadable with ``WaveGMS.from_pretrained``.
    """

    run_dir: Path
    best_dice: float | None
    best_epoch: int | None
    selected_on: str
    history: list[dict[str, Any]]
    best_checkpoint: Path
    last_checkpoint: Path

    @property
    def best_val_dice(self) -> float | None:
        """``best_dice`` (measured on validation unless ``selected_on == "test"``)."""
        return self.best_dice


# ---- data ---------------------------------------------------------------------------------------


def build_datasets(
    config: TrainConfig, run_dir: str | Path | None = None
) -> tuple[dict[str, Dataset], Splits]:
    """The train / val / test datasets of ``config`` and their :class:`~wavegms.data.Splits`.

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
    saved = Path(run_dir) / SPLITS if run_dir is not None else None
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
                *(datasets[part].names for part in ("train", "val", "test")),
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
    parts = {"train": splits.train, "val": splits.val, "test": splits.test}
    # Decoded items kept in memory (uint8) where they fit: each loader process holds its own.
    items = sum(len(names) for names in parts.values())
    cache = items * 4 * config.image_size**2 * max(config.num_workers, 1) <= CACHE_BYTES
    datasets = {
        part: SegmentationDataset(root, names, config.image_size, cache=cache)
        for part, names in parts.items()
    }
    return datasets, splits


def _loader(
    dataset: Dataset,
    batch_size: int,
    config: TrainConfig,
    device: torch.device,
    persistent: bool = False,
    **kwargs: Any,
) -> DataLoader:
    # Pinned memory + non_blocking copies overlap host-to-GPU transfers with compute.
    workers = config.num_workers
    return DataLoader(
        dataset,
        batch_size=batch_size,
        num_workers=workers,
        pin_memory=device.type == "cuda",
        persistent_workers=persistent and workers > 0,
        **kwargs,
    )


# ---- the engine ---------------------------------------------------------------------------------


def epoch_seed(seed: int, epoch: int, rank: int = 0) -> int:
    """The seed of all randomness in 0-based ``epoch`` on ``rank`` (independent streams)."""
    entropy = [seed % 2**64, epoch, rank]
    return int(np.random.SeedSequence(entropy).generate_state(1, dtype=np.uint64)[0])


def train(
    config: TrainConfig | None,
    out_dir: str | Path,
    *,
    resume: bool = False,
    progress: bool = True,
    callbacks: Sequence[Callable | Any] | None = None,
    tiny_vae: AutoencoderTiny | None = None,
) -> TrainResult:
    """Train Wave-GMS with ``config`` into the run folder ``out_dir``.

    Args:
        config: the run's settings (e.g. ``preset("quick", epochs=4)``). With ``resume`` it may
            be None (the saved configuration is used) or differ from the saved one only in
            ``RESUMABLE`` settings, e.g. more ``epochs`` to extend a finished run.
        out_dir: the run folder (see :mod:`wavegms.checkpoint`). A new run refuses a folder
            that already holds one.
        resume: continue the run in ``out_dir`` from ``last/``.
        progress: tqdm progress bars; otherwise one printed line per epoch.
        callbacks: functions ``f(epoch, model, record)``, or objects with such an
            ``on_epoch_end`` method, called on rank 0 after each epoch (1-based) once its
            checkpoints are written; ``model`` is the plain :class:`WaveGMS`, in eval mode.
        tiny_vae: an already loaded TAESD (else ``config.taesd``); it is moved to the device.

    Returns:
        A :class:`TrainResult`. Ctrl-C stops after saving nothing more than the last finished
        epoch and re-raises ``KeyboardInterrupt`` after printing how to resume.
    """
    run_dir = Path(out_dir).expanduser()
    config = _resolve_config(config, run_dir, resume)
    world, device = distributed.setup(get_device(config.device))
    try:
        # Every rank has checked the folder before rank 0 writes to it.
        distributed.barrier(world)
        trainer = _Trainer(config, run_dir, resume, world, device, progress, callbacks, tiny_vae)
        result = trainer.fit()
        # DDP's reducer needs the process group when it is freed: free it before the group.
        del trainer
        gc.collect()
    except BaseException:
        distributed.cleanup(world, succeeded=False)
        raise
    distributed.cleanup(world)
    return result


def _resolve_config(config: TrainConfig | None, run_dir: Path, resume: bool) -> TrainConfig:
    saved_path = run_dir / TRAIN_CONFIG
    has_run = saved_path.is_file() or (run_dir / "last").exists() or (run_dir / "best").exists()
    if not resume:
        if config is None:
            raise ValueError("train() needs a TrainConfig unless resume=True.")
        if has_run:
            raise ValueError(
                f"{run_dir} already holds a training run. Continue it with "
                f"`wavegms train --out {run_dir} --resume` (train(..., resume=True)), or choose "
                "another --out; nothing was overwritten."
            )
        return config
    if not (run_dir / "last" / TRAINING_STATE).is_file() or not saved_path.is_file():
        raise FileNotFoundError(
            f"No run to resume in {run_dir}: expected {TRAIN_CONFIG} and last/{TRAINING_STATE} "
            "(written after the first finished epoch). Start a new run without --resume."
        )
    saved = TrainConfig.load(saved_path)
    if config is None:
        return saved
    changed = [
        name
        for name, value in config.to_dict().items()
        if name not in RESUMABLE and value != saved.to_dict()[name]
    ]
    if changed:
        details = ", ".join(
            f"{n}: {getattr(saved, n)!r} -> {getattr(config, n)!r}" for n in changed
        )
        raise ValueError(
            f"Cannot change {details} when resuming {run_dir}: a resumed run may only change "
            "epochs (to extend it), num_workers, device, taesd and data_dir. Start a new run "
            "(another --out) instead."
        )
    return config


def optimisation_step(
    model: torch.nn.Module,
    loss_fn: WaveGMSLoss,
    optimizer: torch.optim.Optimizer,
    images: torch.Tensor,
    masks: torch.Tensor,
    *,
    dtype: torch.dtype | None = None,
    scaler: torch.amp.GradScaler | None = None,
) -> dict[str, torch.Tensor]:
    """One optimisation step of the SPEC objective, without waiting for the device.

    ``images [B, 3, H, W]`` in [0, 1] and ``masks [B, 1, H, W]`` in {0, 1}, already on the
    model's device; ``dtype`` is the autocast precision (None: fp32) and ``scaler`` the fp16
    gradient scaler. Returns the loss terms (tensors; ``.detach()`` them to log).
    """
    optimizer.zero_grad(set_to_none=True)
    with autocast(images.device, dtype):
        losses = loss_fn(model(images, masks), masks)
    if scaler is None:
        losses["total"].backward()
        optimizer.step()
    else:
        scaler.scale(losses["total"]).backward()
        scaler.step(optimizer)
        scaler.update()
    return losses


class _Trainer:
    """State of one training run on this process; :meth:`fit` runs it."""

    def __init__(
        self,
        config: TrainConfig,
        run_dir: Path,
        resume: bool,
        world: distributed.World,
        device: torch.device,
        progress: bool,
        callbacks: Sequence[Callable | Any] | None,
        tiny_vae: AutoencoderTiny | None,
    ) -> None:
        self.config, self.run_dir, self.world, self.device = config, run_dir, world, device
        self.main = world.is_main
        self.progress = progress and self.main
        self.callbacks = [getattr(c, "on_epoch_end", c) for c in callbacks or ()]
        self.dtype = resolve_precision(config.precision, device)
        if config.batch_size % world.size:
            raise ValueError(
                f"batch_size {config.batch_size} (the global batch) must be divisible by the "
                f"{world.size} training processes."
            )
        if device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # fixed image size: pick the fastest kernels

        # Data. Seeded splits come out the same on every rank; a resumed run reads its own.
        datasets, self.splits = build_datasets(config, run_dir if resume else None)
        if len(datasets["train"]) == 0:
            raise ValueError(f"The training split of {config.dataset} is empty.")
        self.sampler = (
            DistributedSampler(datasets["train"], world.size, world.rank, seed=config.seed)
            if world.distributed
            else None
        )
        self.shuffle_generator = torch.Generator()
        self.train_loader = _loader(
            datasets["train"],
            config.batch_size // world.size,
            config,
            device,
            persistent=True,  # the training loader runs every epoch: keep its workers
            sampler=self.sampler,
            shuffle=self.sampler is None,
            generator=self.shuffle_generator,
        )
        eval_parts = ["val", "test"] if config.selection == "test" else ["val"]
        self.eval_loaders = {
            part: _loader(datasets[part], config.batch_size, config, device)
            for part in eval_parts
            if len(datasets[part])
        }
        if config.selection not in self.eval_loaders:
            raise ValueError(
                f"The {config.selection} split is empty: nothing to select the best model on."
            )
        if config.selection == "test" and self.main:
            warnings.warn(TEST_SELECTION_WARNING, stacklevel=3)

        # Model, objective, optimiser, schedule: seeded, so every rank starts identical.
        torch.manual_seed(config.seed)
        if tiny_vae is None:
            tiny_vae = load_tiny_vae(config.taesd)
        self.model = WaveGMS(tiny_vae, image_size=config.image_size).to(device)
        self.memory_format = (
            torch.channels_last if config.channels_last else torch.contiguous_format
        )
        if config.channels_last:
            self.model.to(memory_format=torch.channels_last)
        if config.gradient_checkpointing:
            self.model.enable_gradient_checkpointing()
        self.loss_fn = WaveGMSLoss()
        self.augment = Augment().to(device) if config.augment else None
        self.optimizer = torch.optim.AdamW(
            self.model.parameters(), lr=config.lr, weight_decay=config.weight_decay
        )
        self.scheduler = warmup_cosine(self.optimizer, config.warmup_epochs, config.epochs)
        self.scaler = _grad_scaler(device) if self.dtype == torch.float16 else None
        self.start_epoch, self.history, self.first_epoch_s = 0, [], 0.0
        self.best: dict[str, Any] = {"dice": None, "epoch": None}
        if resume:
            self._load_state()
        if self.main:  # only now that everything is in place: a failed start leaves no folder
            self.splits.save(run_dir / SPLITS)
            config.save(run_dir / TRAIN_CONFIG)  # new, or e.g. with extended epochs
        self.ddp_model = distributed.wrap(self.model, world, device)
        self.train_model = _compiled(self.ddp_model) if config.compile else self.ddp_model
        self.compile_pending = self.train_model is not self.ddp_model

    # ---- the loop -------------------------------------------------------------------------------

    def fit(self) -> TrainResult:
        config, epochs = self.config, self.config.epochs
        if self.start_epoch >= epochs:
            self._say(
                f"{self.run_dir} has finished all {epochs} epochs; pass a larger --epochs "
                "with --resume to train longer."
            )
        elif self.main:
            self._say(self._banner())
            if not self.splits.test:
                self._say(
                    f"note: no test split ({self.config.dataset}'s test images are not in the "
                    "data folder); best/ is selected on validation, evaluate it on held-out data "
                    "with `wavegms evaluate`"
                )
        bar = tqdm(
            total=epochs,
            initial=self.start_epoch,
            desc="training",
            unit="epoch",
            disable=not self.progress,
        )
        epoch = self.start_epoch
        started = time.perf_counter()
        try:
            for epoch in range(self.start_epoch, epochs):
                record = self._train_epoch(epoch)
                if (epoch + 1) % config.val_every == 0 or epoch + 1 == epochs:
                    record.update(self._validate())
                record = distributed.broadcast(record, self.world)
                self.history.append(record)
                if self.main:
                    self._end_epoch(epoch, record)
                distributed.barrier(self.world)
                bar.set_postfix(_postfix(record, self.best), refresh=False)
                bar.update()
                if epoch + 1 < epochs and epoch - self.start_epoch < 2:
                    self._estimate(epoch, time.perf_counter() - started)
                started = time.perf_counter()
        except KeyboardInterrupt:
            if self.main:
                self._say(
                    f"\nInterrupted in epoch {epoch + 1}; {self.run_dir} holds the run up to "
                    f"epoch {len(self.history)}. Continue it with:\n"
                    f"  wavegms train --out {self.run_dir} --resume",
                )
            raise
        finally:
            bar.close()
        distributed.check_ranks_agree(self.model, self.world, self.device)
        if self.main and self.history:
            plot_training_curves(self.history, self.run_dir / "curves.png")
            if self.best["epoch"] is not None:
                self._say(
                    f"best {self.best['on']} Dice {self.best['dice']:.4f} at epoch "
                    f"{self.best['epoch']} -> {self.run_dir / 'best'}"
                )
        return TrainResult(
            run_dir=self.run_dir,
            best_dice=self.best["dice"],
            best_epoch=self.best["epoch"],
            selected_on=config.selection,
            history=list(self.history),
            best_checkpoint=self.run_dir / "best",
            last_checkpoint=self.run_dir / "last",
        )

    def _train_epoch(self, epoch: int) -> dict[str, Any]:
        """One pass over the training split; returns the epoch's record (no validation yet)."""
        started = time.perf_counter()
        # All randomness of this epoch (order, augmentation, reparameterisation noise) derives
        # from (seed, epoch, rank): what makes a resumed run identical to an uninterrupted one.
        torch.manual_seed(epoch_seed(self.config.seed, epoch, self.world.rank))
        self.shuffle_generator.manual_seed(epoch_seed(self.config.seed, epoch))
        if self.sampler is not None:
            self.sampler.set_epoch(epoch)
        lr = self.optimizer.param_groups[0]["lr"]
        self.ddp_model.train()  # (a compiled wrapper shares these modules)
        sums = torch.zeros(len(LOSS_KEYS), device=self.device)  # loss x items, on the device
        items = 0
        batches = tqdm(
            self.train_loader,
            desc=f"epoch {epoch + 1}/{self.config.epochs}",
            unit="batch",
            leave=False,
            disable=not self.progress,
        )
        for batch in batches:
            losses = self._step(batch)
            count = batch["image"].shape[0]
            sums += torch.stack([losses[key].detach().float() for key in LOSS_KEYS]) * count
            items += count
        self.scheduler.step()
        # The one host-device synchronisation of the epoch.
        totals = distributed.all_reduce_sum(torch.cat([sums, sums.new_tensor([items])]), self.world)
        means = (totals[:-1] / totals[-1]).tolist()
        if not math.isfinite(means[0]):
            raise RuntimeError(
                f"The training loss became {means[0]} in epoch {epoch + 1}: training diverged. "
                "Lower --lr, or use --precision fp32 if mixed precision is on."
            )
        record = {"epoch": epoch + 1, "lr": lr}
        record.update(
            {f"train_{key if key != 'total' else 'loss'}": v for key, v in zip(LOSS_KEYS, means)}
        )
        record["train_time_s"] = time.perf_counter() - started
        return record

    def _step(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """One optimisation step. Nothing here reads a value back from the device (no ``.item()``)
        except the gradient scaler's overflow check with fp16."""
        images = batch["image"].to(self.device, non_blocking=True)
        masks = batch["mask"].to(self.device, non_blocking=True)
        if self.augment is not None:
            images, masks = self.augment(images, masks)
        images = images.contiguous(memory_format=self.memory_format)
        step = functools.partial(
            optimisation_step,
            loss_fn=self.loss_fn,
            optimizer=self.optimizer,
            images=images,
            masks=masks,
            dtype=self.dtype,
            scaler=self.scaler,
        )
        try:
            losses = step(self.train_model)
        except Exception as error:
            if not self.compile_pending:
                raise
            # torch.compile fails on the first call when a backend is missing (e.g. no C
            # compiler on Windows): train eagerly instead of not at all.
            warnings.warn(
                f"torch.compile failed ({error!r:.200}); training without it.", stacklevel=2
            )
            self.train_model = self.ddp_model
            losses = step(self.train_model)
        self.compile_pending = False
        return losses

    @torch.no_grad()
    def _validate(self) -> dict[str, Any]:
        """Dice and IoU at threshold 0.5 (empty/empty = 1) on the evaluation splits, rank 0."""
        if not self.main:
            return {}
        started = time.perf_counter()
        self.model.eval()
        record: dict[str, Any] = {}
        for part, loader in self.eval_loaders.items():
            dice, iou = [], []
            for batch in loader:
                images = batch["image"].to(self.device, non_blocking=True)
                images = images.contiguous(memory_format=self.memory_format)
                probs = self.model.predict(images, precision=self.config.precision)
                masks = batch["mask"].to(self.device, non_blocking=True)
                d, i = dice_iou(probs > 0.5, masks > 0.5)
                dice.append(d)
                iou.append(i)
            record[f"{part}_dice"] = torch.cat(dice).mean().item()
            record[f"{part}_iou"] = torch.cat(iou).mean().item()
        record["selected_on"] = self.config.selection
        record["val_time_s"] = time.perf_counter() - started
        return record

    # ---- saving and loading ---------------------------------------------------------------------

    def _end_epoch(self, epoch: int, record: dict[str, Any]) -> None:
        """Rank 0: write best/ (if improved), then last/ with the training state, then the log.

        last/training_state.pt is the single file a resume reads (weights included), so it is
        always consistent; best/ is written first, as re-running an epoch rewrites it anyway.
        """
        key = f"{self.config.selection}_dice"
        if record.get(key) is not None and (
            self.best["dice"] is None or record[key] > self.best["dice"]
        ):
            self.best = {"dice": record[key], "epoch": epoch + 1, "on": self.config.selection}
            self._save_model("best", record)
        state = {
            "epoch": epoch + 1,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler is not None else None,
            "best": self.best,
            "history": self.history,
            "rng": {
                "torch": torch.get_rng_state(),
                "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            },
        }
        atomic_torch_save(state, self.run_dir / "last" / TRAINING_STATE)
        self._save_model("last", record)
        atomic_write_text(self.run_dir / LOG, "".join(_json_line(r) for r in self.history))
        if not self.progress:
            self._say(_summary_line(record, self.config.epochs))
        self.model.eval()
        for callback in self.callbacks:
            callback(epoch + 1, self.model, record)

    def _save_model(self, name: str, record: dict[str, Any]) -> None:
        folder = self.run_dir / name
        self.model.save_pretrained(folder)
        metrics = {**record, "checkpoint": name, "selected_on": self.config.selection}
        if self.config.selection == "test":
            metrics["warning"] = TEST_SELECTION_WARNING
        atomic_write_json(folder / METRICS, metrics)

    def _load_state(self) -> None:
        state = load_training_state(self.run_dir / "last" / TRAINING_STATE)
        if state["epoch"] > self.config.epochs:
            raise ValueError(
                f"{self.run_dir} has already trained {state['epoch']} epochs: --epochs must be at "
                f"least that (got {self.config.epochs})."
            )
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        sync_lr(self.scheduler)  # the schedule may have been extended
        if self.scaler is not None and state["scaler"] is not None:
            self.scaler.load_state_dict(state["scaler"])
        self.start_epoch, self.best, self.history = state["epoch"], state["best"], state["history"]
        torch.set_rng_state(state["rng"]["torch"])
        if state["rng"]["cuda"] and len(state["rng"]["cuda"]) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(state["rng"]["cuda"])

    # ---- messages -------------------------------------------------------------------------------

    def _estimate(self, epoch: int, seconds: float) -> None:
        """Time left after this session's first epoch, and again after the second when start-up
        costs (kernel selection, compilation, data caches) made the first unrepresentative."""
        first = epoch == self.start_epoch
        if first:
            self.first_epoch_s = seconds
        if first or abs(seconds - self.first_epoch_s) > 0.25 * self.first_epoch_s:
            left = seconds * (self.config.epochs - epoch - 1)
            self._say(f"epoch {epoch + 1} took {_duration(seconds)}: ~{_duration(left)} left")

    def _say(self, message: str) -> None:
        if not self.main:
            return
        if self.progress:
            tqdm.write(message, file=sys.stdout)
        else:
            print(message, flush=True)

    def _banner(self) -> str:
        c, splits = self.config, self.splits
        verb = f"resuming from epoch {self.start_epoch}" if self.start_epoch else "training"
        where = f"{self.device}" + (
            f" x {self.world.size} processes" if self.world.distributed else ""
        )
        precision = {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[self.dtype]
        return (
            f"{verb}: {c.dataset} ({len(splits.train)} train / {len(splits.val)} val / "
            f"{len(splits.test)} test) at {c.image_size} px, {c.epochs} epochs, batch "
            f"{c.batch_size}, lr {c.lr:g}, {precision} on {where} -> {self.run_dir}"
        )


def _grad_scaler(device: torch.device):  # noqa: ANN202 - torch.amp.GradScaler
    if hasattr(torch.amp, "GradScaler"):
        return torch.amp.GradScaler(device.type)
    return torch.cuda.amp.GradScaler()  # torch < 2.3


def _compiled(module: torch.nn.Module) -> torch.nn.Module:
    try:
        return torch.compile(module)
    except Exception as error:  # e.g. an unsupported Python version
        warnings.warn(
            f"torch.compile is unavailable ({error!r:.200}); training without it.", stacklevel=2
        )
        return module


def _json_line(record: dict[str, Any]) -> str:
    return json.dumps(record) + "\n"


def _postfix(record: dict[str, Any], best: dict[str, Any]) -> dict[str, str]:
    postfix = {"loss": f"{record['train_loss']:.3f}"}
    if record.get("val_dice") is not None:
        postfix["val_dice"] = f"{record['val_dice']:.3f}"
    if best.get("dice") is not None:
        postfix[f"best_{best['on']}"] = f"{best['dice']:.3f}"
    return postfix


def _summary_line(record: dict[str, Any], epochs: int) -> str:
    line = (
        f"epoch {record['epoch']}/{epochs}  lr {record['lr']:.2e}  loss {record['train_loss']:.4f}"
    )
    for part in ("val", "test"):
        if record.get(f"{part}_dice") is not None:
            line += f"  {part} Dice {record[f'{part}_dice']:.4f}"
    seconds = record["train_time_s"] + record.get("val_time_s", 0.0)
    return line + f"  ({seconds:.1f} s)"


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


# ---- the `wavegms train` subcommand -------------------------------------------------------------

HELP = "train Wave-GMS (paper presets, or `quick`: synthetic data on a CPU in minutes)"
DESCRIPTION = (
    "Train Wave-GMS into a run folder (--out): train_config.json, splits.json, best/, last/, "
    "log.jsonl, curves.png. Settings come from --preset (default quick); every flag given "
    "overrides it. Ctrl-C keeps every finished epoch: continue with --out RUN_DIR --resume. "
    "Several GPUs: torchrun --nproc_per_node=N -m wavegms train ... (--batch-size is the global "
    "batch)."
)

# flag -> (TrainConfig field, argparse options). Flags not given keep the preset's value.
FLAGS: dict[str, tuple[str, dict[str, Any]]] = {
    "--data": (
        "data_dir",
        {
            "metavar": "DATA_DIR",
            "help": "folder holding the prepared "
            "<dataset>/ folders (python -m data_download <dataset> --root DATA_DIR)",
        },
    ),
    "--dataset": ("dataset", {"choices": SOURCES, "help": "the data to train on"}),
    "--epochs": ("epochs", {"type": int, "help": "epochs in all (with --resume: extend a run)"}),
    "--batch-size": ("batch_size", {"type": int, "help": "global batch size (paper: 12)"}),
    "--image-size": ("image_size", {"type": int, "help": "square input side, multiple of 8"}),
    "--lr": ("lr", {"type": float, "help": "peak AdamW learning rate (paper: 2e-3)"}),
    "--weight-decay": ("weight_decay", {"type": float, "help": "AdamW weight decay"}),
    "--warmup-epochs": ("warmup_epochs", {"type": int, "help": "linear warm-up epochs"}),
    "--seed": ("seed", {"type": int, "help": "seeds initialisation, splits and every epoch"}),
    "--precision": (
        "precision",
        {
            "choices": PRECISIONS,
            "help": "autocast precision; fp16 "
            "uses a gradient scaler; auto: bf16 where fast, else fp16 (GPU) or fp32",
        },
    ),
    "--device": ("device", {"help": "cpu, cuda, cuda:1, mps or auto"}),
    "--taesd": ("taesd", {"help": "TAESD folder or hub id (default: $WAVEGMS_TAESD or the hub)"}),
    "--val-every": ("val_every", {"type": int, "help": "validate every N epochs (and the last)"}),
    "--num-workers": ("num_workers", {"type": int, "help": "data-loading processes"}),
    "--split": ("split", {"choices": ("gms", "random"), "help": "gms: the published lists"}),
    "--val-fraction": ("val_fraction", {"type": float, "help": "share of train for validation"}),
    "--test-fraction": ("test_fraction", {"type": float, "help": "test share (--split random)"}),
    "--selection": (
        "selection",
        {
            "choices": ("val", "test"),
            "help": "split that picks best/; "
            "test: the paper's protocol (all of train is trained on, best/ is picked on "
            "test, so its test scores are optimistic)",
        },
    ),
    "--augment": (
        "augment",
        {"action": argparse.BooleanOptionalAction, "help": "train-time augmentation (SPEC 3)"},
    ),
    "--channels-last": (
        "channels_last",
        {
            "action": argparse.BooleanOptionalAction,
            "help": "channels-last memory format (faster convolutions)",
        },
    ),
    "--compile": (
        "compile",
        {
            "action": argparse.BooleanOptionalAction,
            "help": "torch.compile the model (falls back to eager if it fails)",
        },
    ),
    "--gradient-checkpointing": (
        "gradient_checkpointing",
        {
            "action": argparse.BooleanOptionalAction,
            "help": "recompute TAESD's decoder, one head at a time, in the backward pass: less "
            "peak memory (larger batches on small GPUs) for ~20%% more time per step",
        },
    ),
    "--synthetic-kind": (
        "synthetic_kind",
        {"choices": ("ultrasound", "endoscopy", "mixed"), "help": "synthetic images to train on"},
    ),
    "--synthetic-sizes": (
        "synthetic_sizes",
        {
            "type": int,
            "nargs": 3,
            "metavar": ("TRAIN", "VAL", "TEST"),
            "help": "synthetic item counts",
        },
    ),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, metavar="RUN_DIR", help="the run folder")
    parser.add_argument(
        "--preset",
        choices=tuple(PRESETS),
        default=argparse.SUPPRESS,
        help="starting settings (default: quick; with --resume: the run's saved settings)",
    )
    parser.add_argument(
        "--resume", action="store_true", help="continue the run in RUN_DIR from its last epoch"
    )
    parser.add_argument("--no-progress", action="store_true", help="one line per epoch, no bars")
    parser.add_argument(
        "--print-config", action="store_true", help="print the resolved settings and exit"
    )
    group = parser.add_argument_group("settings (default: the preset's value)")
    for flag, (name, options) in FLAGS.items():
        group.add_argument(flag, dest=name, default=argparse.SUPPRESS, **options)


def run(args: argparse.Namespace) -> int:
    overrides = {name: getattr(args, name) for name, _ in FLAGS.values() if hasattr(args, name)}
    name = getattr(args, "preset", None)
    if args.resume and name is None:
        saved = Path(args.out).expanduser() / TRAIN_CONFIG
        if not saved.is_file():
            raise FileNotFoundError(
                f"No run to resume in {args.out} (no {TRAIN_CONFIG}); start one without --resume."
            )
        config = TrainConfig.load(saved).replace(**overrides)
    else:
        config = preset(name or "quick", **overrides)
        config.notes.setdefault("preset", name or "quick")
    if args.print_config:
        print(_json_line(config.to_dict()), end="")
        return 0
    train(config, args.out, resume=args.resume, progress=not args.no_progress)
    return 0


__all__ = ["TrainResult", "build_datasets", "epoch_seed", "train"]
