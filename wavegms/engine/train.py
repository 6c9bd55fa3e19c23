"""The training engine: :func:`train`, with the whole epoch loop in one function.

One epoch, as :func:`train` runs it::

    reseed from (seed, epoch, rank)            -> shuffling, augmentation, reparameterisation
    for each batch: augment on the device, optimisation_step (the objective, AdamW)
    loss sums stay on the device; read once per epoch (fp16: overflowed steps left out)
    validate every ``val_every`` epochs (rank 0), keep ``best`` (by Dice) and ``last``
    write last/training_state.pt, then log.jsonl

Because all randomness of an epoch derives from ``(seed, epoch, rank)`` and ``last/`` is written
after every epoch, ``resume=True`` continues where a run stopped with the same data order,
augmentation and noise, and an interruption loses at most the epoch in flight. On a CPU the
resumed run's weights equal an uninterrupted run's. On a GPU they agree only closely, not bit
for bit: ``cudnn.benchmark`` times the candidate kernels anew in every process and may pick
others, and some backward kernels sum with atomic adds in no fixed order; such last-bit
differences grow over the following epochs, as between two uninterrupted GPU runs.

Under ``torchrun`` the same code trains data-parallel (:mod:`wavegms.engine.distributed`):
``batch_size`` is the *global* batch, split evenly over the processes, so the paper's batch 12
and lr 2e-3 mean the same on one GPU or several. The command line is in :mod:`wavegms.cli`.
"""

from __future__ import annotations

import gc
import time
import warnings
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ..data import Augment
from ..losses import WaveGMSLoss
from ..model import WaveGMS
from ..tiny_vae import load_tiny_vae
from ..utils.device import PRECISION_NAMES, autocast, get_device, grad_scaler, resolve_precision
from ..utils.lock import claim_folder
from ..utils.memory import explain_out_of_memory
from ..utils.threads import configure_threads
from . import distributed
from .checkpoint import (
    CURVES,
    SPLITS,
    TEST_SELECTION_WARNING,
    TRAIN_CONFIG,
    TRAINING_STATE,
    clear_unfinished_run,
    recover_run_dir,
    resolve_config,
    restore_training_state,
    run_status,
    save_best,
    save_last,
    training_state,
    write_log,
)
from .config import TrainConfig
from .console import Console
from .curves import plot_training_curves
from .measures import EpochLosses, validate
from .run_data import build_datasets, evaluation_loaders, training_loader
from .schedule import warmup_cosine

if TYPE_CHECKING:
    from diffusers import AutoencoderTiny


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
        config: the run's settings (e.g. ``preset("quick", epochs=8)``). With ``resume`` it may
            be None (the saved configuration is used) or differ from the saved one only in
            :data:`~wavegms.engine.config.RESUMABLE` settings, e.g. more ``epochs`` to extend a
            finished run.
        out_dir: the run folder (see :mod:`wavegms.engine.checkpoint`), held for the run's life
            (:mod:`wavegms.utils.lock`: a second training into it is refused). A new run refuses a
            folder that holds a run with a finished epoch or other files; a run that stopped
            before finishing its first epoch is started again.
        resume: continue the run in ``out_dir`` from ``last/``; a run with no finished epoch
            starts again from scratch with its saved settings. On a CPU the result equals an
            uninterrupted run's; on a GPU it agrees closely, not bit for bit (see the module's
            docstring: kernel choice and atomic-add kernels vary between processes).
        progress: tqdm progress bars; otherwise one printed line per epoch.
        callbacks: functions ``f(epoch, model, record)``, or objects with such an
            ``on_epoch_end`` method, called on rank 0 after each epoch (1-based) once its
            checkpoints are written; ``model`` is the plain :class:`WaveGMS`, in eval mode.
        tiny_vae: an already loaded TAESD (else ``config.taesd``), left as it is: where it is
            not on the device, the model uses a copy that is.

    Returns:
        A :class:`TrainResult`. Ctrl-C stops after saving nothing more than the last finished
        epoch and re-raises ``KeyboardInterrupt`` after printing how to resume. Running out of
        GPU memory raises ``torch.OutOfMemoryError`` with one line saying what to lower, once
        the memory the run held is free (:func:`~wavegms.utils.memory.explain_out_of_memory`).
    """
    run_dir = Path(out_dir).expanduser()
    main = distributed.world_from_env().is_main
    # Rank 0 holds the folder before looking at it: two runs cannot both find it free.
    with claim_folder(run_dir) if main else nullcontext():
        if main:
            recover_run_dir(run_dir)  # what a killed run left: temporary files, a broken commit
        config = resolve_config(config, run_dir, resume)
        if main and not resume and run_status(run_dir) == "started":
            clear_unfinished_run(run_dir)
        world, device = distributed.setup(get_device(config.device))
        try:
            distributed.barrier(world)  # every rank has checked the folder before rank 0 writes
            result = explain_out_of_memory(
                lambda: _train(
                    config, run_dir, resume, world, device, progress, callbacks, tiny_vae
                ),
                device,
                f"training at batch size {config.batch_size}",
                _memory_fixes(config),
            )
            gc.collect()  # DDP's reducer needs the process group when it is freed: free it first
        except BaseException:
            distributed.cleanup(world, succeeded=False)
            raise
        distributed.cleanup(world)
    return result


def _train(
    config: TrainConfig,
    run_dir: Path,
    resume: bool,
    world: distributed.World,
    device: torch.device,
    progress: bool,
    callbacks: Sequence[Callable | Any] | None,
    tiny_vae: AutoencoderTiny | None,
) -> TrainResult:
    callbacks = [getattr(c, "on_epoch_end", c) for c in callbacks or ()]
    dtype = resolve_precision(config.precision, device)
    if config.batch_size % world.size:
        raise ValueError(
            f"batch_size {config.batch_size} (the global batch) must be divisible by the "
            f"{world.size} training processes."
        )
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed image size: pick the fastest kernels

    # Data. Seeded splits come out the same on every rank; a resumed run reads its own.
    datasets, splits = build_datasets(config, run_dir if resume else None)
    train_loader, sampler, shuffle = training_loader(datasets["train"], config, world, device)
    eval_loaders = evaluation_loaders(datasets, config, device)
    if config.selection == "test" and world.is_main:
        warnings.warn(TEST_SELECTION_WARNING, stacklevel=3)

    # Model, objective, optimiser, schedule: seeded, so every rank starts identical.
    torch.manual_seed(config.seed)
    if tiny_vae is None:
        tiny_vae = load_tiny_vae(config.taesd, device)
    model = WaveGMS(tiny_vae, image_size=config.image_size).to(device)
    memory_format = torch.channels_last if config.channels_last else torch.contiguous_format
    if config.channels_last:
        model.to(memory_format=memory_format)
    if config.gradient_checkpointing:
        model.enable_gradient_checkpointing()
    loss_fn = WaveGMSLoss()
    augment = Augment() if config.augment else None  # on the host: see Augment
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.lr, weight_decay=config.weight_decay
    )
    scheduler = warmup_cosine(optimizer, config.warmup_epochs, config.epochs)
    scaler = grad_scaler(device) if dtype == torch.float16 else None
    start_epoch, best, history = 0, {"dice": None, "epoch": None}, []
    if resume and (run_dir / "last" / TRAINING_STATE).is_file():  # else: no finished epoch
        start_epoch, best, history = restore_training_state(
            run_dir, config, model, optimizer, scheduler, scaler, main=world.is_main
        )
    if world.is_main:  # only now that everything is in place: a failed start leaves no folder
        splits.save(run_dir / SPLITS)
        config.save(run_dir / TRAIN_CONFIG)  # new, or e.g. with extended epochs
    ddp_model = distributed.wrap(model, world, device)
    step = _CompiledStep(ddp_model) if config.compile else _EagerStep(ddp_model)

    console = Console(world.is_main, progress, config.epochs, start_epoch)
    where = f"{device}" + (f" x {world.size} processes" if world.distributed else "")
    console.start(config, splits, PRECISION_NAMES[dtype], where, run_dir)

    epoch_losses = EpochLosses(device, optimizer if scaler is not None else None)
    epoch = start_epoch
    try:
        for epoch in range(start_epoch, config.epochs):
            # Other work may have started or stopped since the last epoch: choose again.
            configure_threads(config.threads, say=console.say)
            started = time.perf_counter()
            # All randomness of this epoch (order, augmentation, reparameterisation noise)
            # derives from (seed, epoch, rank): a resumed run draws what an uninterrupted one
            # would (on a CPU it ends with the same weights; on a GPU see the docstring).
            torch.manual_seed(epoch_seed(config.seed, epoch, world.rank))
            shuffle.manual_seed(epoch_seed(config.seed, epoch))
            if sampler is not None:
                sampler.set_epoch(epoch)
            lr = optimizer.param_groups[0]["lr"]

            # Train: nothing in this loop reads a value back from the device, except fp16's
            # GradScaler (whether the gradients overflowed, to skip that update).
            ddp_model.train()
            for batch in console.batches(train_loader, epoch):
                images = batch["image"].to(device, non_blocking=True)
                masks = batch["mask"].to(device, non_blocking=True)
                if augment is not None:
                    images, masks = augment(images, masks)
                images = images.contiguous(memory_format=memory_format)
                losses = step(loss_fn, optimizer, images, masks, dtype=dtype, scaler=scaler)
                epoch_losses.add(losses, len(images))  # fp16: an overflowed step is left out
            scheduler.step()
            record = epoch_losses.record(epoch, lr, world)  # the one synchronisation
            record["train_time_s"] = time.perf_counter() - started

            # Validate (rank 0), then tell every rank what rank 0 measured.
            due = (epoch + 1) % config.val_every == 0 or epoch + 1 == config.epochs
            if due and world.is_main:
                record.update(validate(model, eval_loaders, config, device, memory_format))
            record = distributed.broadcast(record, world)
            history.append(record)

            # Checkpoint and log (rank 0): last/ with the training state (what a resume
            # reads) is the epoch's commit point; then best/ if improved, then the log.
            if world.is_main:
                key = f"{config.selection}_dice"
                improved = record.get(key) is not None and (
                    best["dice"] is None or record[key] > best["dice"]
                )
                if improved:
                    best = {"dice": record[key], "epoch": epoch + 1, "on": config.selection}
                state = training_state(epoch, model, optimizer, scheduler, scaler, best, history)
                save_last(model, run_dir, record, config.selection, state)
                if improved:
                    save_best(model, run_dir, record, config.selection)
                write_log(run_dir, history)
            distributed.barrier(world)
            console.end_epoch(record, best, time.perf_counter() - started)
            if world.is_main:
                model.eval()
                for callback in callbacks:
                    callback(epoch + 1, model, record)
    except KeyboardInterrupt:
        console.interrupted(epoch, len(history), run_dir)
        raise
    finally:
        console.close()

    distributed.check_ranks_agree(model, world, device)
    if world.is_main and history:
        plot_training_curves(history, run_dir / CURVES)
        if best["epoch"] is not None:
            console.say(
                f"best {best['on']} Dice {best['dice']:.4f} at epoch {best['epoch']} -> "
                f"{run_dir / 'best'}"
            )
    return TrainResult(
        run_dir=run_dir,
        best_dice=best["dice"],
        best_epoch=best["epoch"],
        selected_on=config.selection,
        history=list(history),
        best_checkpoint=run_dir / "best",
        last_checkpoint=run_dir / "last",
    )


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
    """One optimisation step of the objective (docs/paper_map.md, "Objective"), without
    waiting for the device.

    ``images [B, 3, H, W]`` in [0, 1] and ``masks [B, 1, H, W]`` in {0, 1}, already on the
    model's device; ``dtype`` is the autocast precision (None: fp32) and ``scaler`` the fp16
    gradient scaler, which skips the update of a step whose gradients overflowed (and lowers
    its scale). Returns the loss terms (tensors; ``.detach()`` them to log).
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


def epoch_seed(seed: int, epoch: int, rank: int = 0) -> int:
    """The seed of all randomness in 0-based ``epoch`` on ``rank`` (independent streams)."""
    entropy = [seed % 2**64, epoch, rank]
    return int(np.random.SeedSequence(entropy).generate_state(1, dtype=np.uint64)[0])


# ---- the details of the loop ---------------------------------------------------------------------


def _memory_fixes(config: TrainConfig) -> list[str]:
    """What lowers a training run's memory, for an out-of-memory error."""
    fixes = ["lower --batch-size (in a new run)"]
    if not config.gradient_checkpointing:
        fixes.append("turn on --gradient-checkpointing (also with --resume)")
    if config.precision == "fp32":
        fixes.append("use --precision auto (mixed precision; also with --resume)")
    return fixes


class _EagerStep:
    """:func:`optimisation_step` on ``model``."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.model = model

    def __call__(self, *args: Any, **kwargs: Any) -> dict[str, torch.Tensor]:
        return optimisation_step(self.model, *args, **kwargs)


class _CompiledStep(_EagerStep):
    """:func:`optimisation_step` on ``torch.compile(model)``, falling back to ``model`` when
    compiling fails: at once (e.g. an unsupported Python) or on the first call (e.g. no C
    compiler on Windows). Training eagerly beats not training at all."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__(model)
        self.eager, self.first_call = model, True
        try:
            self.model = torch.compile(model)
        except Exception as error:
            self._fall_back(error)

    def __call__(self, *args: Any, **kwargs: Any) -> dict[str, torch.Tensor]:
        if not self.first_call:
            return super().__call__(*args, **kwargs)
        try:
            losses = super().__call__(*args, **kwargs)
        except Exception as error:
            self._fall_back(error)
            losses = super().__call__(*args, **kwargs)
        self.first_call = False
        return losses

    def _fall_back(self, error: Exception) -> None:
        warnings.warn(f"torch.compile failed ({error!r:.200}); training without it.", stacklevel=3)
        self.model, self.first_call = self.eager, False


__all__ = [
    "TrainResult",
    "epoch_seed",
    "optimisation_step",
    "train",
]
