"""Run folders: what a training run writes, and how it is read back.

A training run folder (``RUN_DIR``) holds::

    train_config.json    the resolved TrainConfig
    splits.json          the item names of train / val / test (reproducibility)
    best/                WaveGMS.save_pretrained of the best validation epoch, + metrics.json
    last/                the same for the latest epoch, + training_state.pt (resume)
    log.jsonl            one JSON object per epoch
    curves.png           loss and validation Dice curves
    run.lock             while a run writes (:mod:`wavegms.utils.lock`)

Every file is written atomically (:mod:`wavegms.utils.atomic`); nothing is read with pickle:
weights with safetensors, ``training_state.pt`` with ``torch.load(weights_only=True)``.
``last/`` is committed whole (:func:`save_last`, through
:func:`~wavegms.utils.atomic.commit_folder`): its weights, metrics and training state are
always of one epoch, whenever a run is killed (:func:`recover_run_dir` finishes a cut commit);
``best/`` likewise, and never ahead of it. A run folder with ``train_config.json`` but no
``last/training_state.pt`` is a run with no finished epoch: it restarts from scratch.
"""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from ..data.splits import SPLITS_FILE as SPLITS
from ..utils.atomic import (
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    commit_folder,
    recover_folder,
)
from ..utils.lock import LOCK_NAME
from .config import RESUMABLE, TrainConfig
from .schedule import sync_lr

if TYPE_CHECKING:
    from diffusers import AutoencoderTiny

    from ..model import WaveGMS

TRAIN_CONFIG = "train_config.json"
TRAINING_STATE = "training_state.pt"
METRICS = "metrics.json"
LOG = "log.jsonl"
CURVES = "curves.png"
TEST_SELECTION_WARNING = (
    "the checkpoint is selected on the TEST split (paper protocol): its test scores are "
    "optimistic; select on validation for an honest estimate"
)


def atomic_torch_save(obj: Any, path: str | Path) -> None:
    """``torch.save`` atomically. Keep ``obj`` to tensors and plain Python values so that it
    loads with ``weights_only=True``.

    Serialised in memory first (a training state is tens of MB): torch's own writer reports a
    full disk as "enforce fail at inline_container.cc", a plain write as ``OSError`` ENOSPC,
    naming the file."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    atomic_write_bytes(path, buffer.getbuffer())


def load_training_state(path: str | Path, map_location: str | torch.device = "cpu") -> dict:
    """Read a ``training_state.pt`` safely (``weights_only=True``: no arbitrary unpickling).

    A damaged file (truncated, not a training state) raises ``ValueError`` naming it."""
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except (FileNotFoundError, IsADirectoryError, PermissionError):
        raise
    except Exception as error:  # torch raises RuntimeError, UnpicklingError, EOFError...
        raise ValueError(
            f"{path} is damaged or not a training state ({type(error).__name__}: "
            f"{' '.join(str(error).split())[:200]}): start a new run, or resume from a copy."
        ) from None
    if not isinstance(state, dict) or "epoch" not in state:
        raise ValueError(f"{path} is not a training state written by `wavegms train`.")
    return state


def save_best(model: WaveGMS, run_dir: Path, record: dict[str, Any], selection: str) -> None:
    """``RUN_DIR/best/``: the model's weights and the epoch's ``metrics.json``, committed in
    one step like ``last/``. Written after ``last/`` (the commit point of an epoch): a kill in
    between leaves the previous best, which :func:`restore_training_state` brings up to date."""

    def write(folder: Path) -> None:
        _write_checkpoint(model, folder, "best", record, selection)

    commit_folder(run_dir / "best", write)


def save_last(
    model: WaveGMS, run_dir: Path, record: dict[str, Any], selection: str, state: dict
) -> None:
    """``RUN_DIR/last/``: weights, ``metrics.json`` and ``training_state.pt`` of one epoch,
    committed in one step."""

    def write(folder: Path) -> None:
        _write_checkpoint(model, folder, "last", record, selection)
        atomic_torch_save(state, folder / TRAINING_STATE)

    commit_folder(run_dir / "last", write)


def _write_checkpoint(
    model: WaveGMS, folder: Path, name: str, record: dict[str, Any], selection: str
) -> None:
    model.save_pretrained(folder)
    metrics = {**record, "checkpoint": name, "selected_on": selection}
    if selection == "test":
        metrics["warning"] = TEST_SELECTION_WARNING
    atomic_write_json(folder / METRICS, metrics)


def recover_run_dir(run_dir: Path) -> None:
    """Tidy what a killed run left (call while holding the folder's lock): finish an
    interrupted commit of ``last/`` or ``best/`` and remove temporary files and folders."""
    for name in ("last", "best"):
        recover_folder(run_dir / name)
    for folder in (run_dir, run_dir / "best", run_dir / "last"):
        if folder.is_dir():
            for tmp in folder.glob(".*.tmp"):  # atomic_write's temporary files
                if tmp.is_file():
                    tmp.unlink(missing_ok=True)


def run_status(run_dir: Path) -> str:
    """What ``run_dir`` holds: ``"empty"`` (or missing), ``"finished"`` (at least one finished
    epoch: ``last/training_state.pt``), ``"started"`` (a run with no finished epoch),
    ``"orphaned"`` (trained results, ``best/`` or an epoch's log, without the ``last/`` they
    are written after: someone removed it) or ``"foreign"`` (files that are not a run's)."""
    if (run_dir / "last" / TRAINING_STATE).is_file():
        return "finished"
    if (run_dir / "best" / METRICS).is_file() or _has_content(run_dir / LOG):
        return "orphaned"
    if not run_dir.is_dir():
        return "empty"
    names = {
        p.name
        for p in run_dir.iterdir()
        if p.name != LOCK_NAME
        and not (p.name.startswith(".") and p.name.endswith(".tmp"))
        and not p.name.startswith((".last.", ".best."))
    }
    if not names:
        return "empty"
    if (run_dir / TRAIN_CONFIG).is_file() or names == {SPLITS}:
        return "started"  # the settings were saved, the first epoch did not finish
    return "foreign"


def _has_content(path: Path) -> bool:
    try:
        return path.stat().st_size > 0
    except OSError:
        return False


def resolve_config(config: TrainConfig | None, run_dir: Path, resume: bool) -> TrainConfig:
    """The configuration to run: ``config`` for a new run (refusing a folder that holds a run
    with a finished epoch, or other files); for a resumed run the saved one, with ``config``'s
    ``RESUMABLE`` changes only. A run with no finished epoch may be started again either way."""
    status = run_status(run_dir)
    if status == "orphaned":
        raise ValueError(
            f"{run_dir} holds a trained run's results (best/, {LOG}) but no last/, which a run "
            "resumes from: nothing to resume, and starting again would replace them. Move "
            f"best/ and {LOG} elsewhere to start again here, or choose another --out; nothing "
            "was written."
        )
    if status == "foreign":
        raise ValueError(
            f"{run_dir} is not empty and holds no training run: give a new or empty folder "
            "as --out; nothing was written."
        )
    saved_path = run_dir / TRAIN_CONFIG
    if not resume:
        if config is None:
            raise ValueError("train() needs a TrainConfig unless resume=True.")
        if status == "finished":
            raise ValueError(
                f"{run_dir} already holds a training run. Continue it with "
                f"`wavegms train --out {run_dir} --resume` (train(..., resume=True)), or choose "
                "another --out; nothing was overwritten."
            )
        return config
    if not saved_path.is_file():
        raise FileNotFoundError(
            f"No run to resume in {run_dir}: expected {TRAIN_CONFIG} (written when a run "
            "starts). Start a new run without --resume."
        )
    saved = TrainConfig.load(saved_path)
    if config is None:
        return saved
    changed = unresumable_changes(config, saved)
    if changed:
        new, old = config.to_dict(), saved.to_dict()
        details = ", ".join(f"{n}: {old[n]!r} -> {new[n]!r}" for n in changed)
        raise ValueError(
            f"Cannot change {details} when resuming {run_dir}: a resumed run may only change "
            f"{', '.join(RESUMABLE)}. Start a new run (another --out) instead."
        )
    return config


def unresumable_changes(config: TrainConfig, saved: TrainConfig) -> list[str]:
    """The settings (field names) in which ``config`` differs from a run's ``saved`` one and
    that a resumed run may not change (all but ``RESUMABLE``)."""
    new, old = config.to_dict(), saved.to_dict()
    return [name for name in new if name not in RESUMABLE and new[name] != old[name]]


def clear_unfinished_run(run_dir: Path) -> None:
    """Remove what a run with no finished epoch wrote, before it starts again."""
    for name in ("best", "last"):
        shutil.rmtree(run_dir / name, ignore_errors=True)
    for name in (LOG, CURVES):
        (run_dir / name).unlink(missing_ok=True)


def write_log(run_dir: Path, history: list[dict[str, Any]]) -> None:
    """``RUN_DIR/log.jsonl``: one JSON object per finished epoch."""
    atomic_write_text(run_dir / LOG, "".join(json.dumps(record) + "\n" for record in history))


def training_state(
    epoch: int,
    model: WaveGMS,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    scaler: Any,
    best: dict[str, Any],
    history: list[dict[str, Any]],
) -> dict[str, Any]:
    """Everything a resume needs, as tensors and plain values (loads with weights_only)."""
    return {
        "epoch": epoch + 1,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "scaler": scaler.state_dict() if scaler is not None else None,
        "best": best,
        "history": history,
        "rng": {
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        },
    }


def restore_training_state(
    run_dir: Path,
    config: TrainConfig,
    model: WaveGMS,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    scaler: Any,
    *,
    main: bool,
) -> tuple[int, dict[str, Any], list[dict[str, Any]]]:
    """Restore ``last/training_state.pt`` into the given objects; returns
    ``(start_epoch, best, history)``. Every training process restores; only the ``main`` one
    (rank 0) writes: it completes ``best/`` and the log when a kill cut the epoch's writes
    short after ``last/`` was committed (two writers would race on ``best/``'s commit)."""
    state = load_training_state(run_dir / "last" / TRAINING_STATE)
    if state["epoch"] > config.epochs:
        raise ValueError(
            f"{run_dir} has already trained {state['epoch']} epochs: --epochs must be at "
            f"least that (got {config.epochs})."
        )
    model.load_state_dict(state["model"])
    best, history = state["best"], state["history"]
    if main:
        if best["epoch"] == state["epoch"] and _epoch_of(run_dir / "best") != best["epoch"]:
            # Killed between committing last/ and writing best/: this epoch is the best one.
            save_best(model, run_dir, history[-1], best["on"])
        write_log(run_dir, history)  # the log is written last: a kill may have left it behind
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    sync_lr(scheduler)  # the schedule may have been extended
    if scaler is not None and state["scaler"] is not None:
        scaler.load_state_dict(state["scaler"])
    torch.set_rng_state(state["rng"]["torch"])
    if state["rng"]["cuda"] and len(state["rng"]["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["rng"]["cuda"])
    return state["epoch"], best, history


def _epoch_of(folder: Path) -> int | None:
    try:
        return json.loads((folder / METRICS).read_text()).get("epoch")
    except (OSError, ValueError, AttributeError):
        return None


def resolve_checkpoint(path: str | Path) -> Path:
    """The model folder for ``path``: a checkpoint folder itself, else ``RUN_DIR/best``, else
    ``RUN_DIR/last``. Raises ``FileNotFoundError`` saying what was expected."""
    path = Path(path).expanduser()
    for candidate in (path, path / "best", path / "last"):
        if (candidate / "config.json").is_file():
            return candidate
    raise FileNotFoundError(
        f"No Wave-GMS checkpoint in {str(path)!r}: expected a run folder made by `wavegms train` "
        "(with best/ or last/) or a folder with config.json and "
        "diffusion_pytorch_model.safetensors."
    )


def find_run_dir(path: str | Path) -> Path | None:
    """The run folder that ``path`` (a run folder or one of its checkpoints) belongs to."""
    path = Path(path).expanduser()
    for candidate in (path, path.parent):
        if (candidate / TRAIN_CONFIG).is_file():
            return candidate
    return None


def load_train_config(path: str | Path) -> TrainConfig | None:
    """The TrainConfig saved with the run that ``path`` belongs to, or None."""
    run_dir = find_run_dir(path)
    return TrainConfig.load(run_dir / TRAIN_CONFIG) if run_dir else None


def load_model(
    path: str | Path,
    device: str | torch.device | None = None,
    tiny_vae: AutoencoderTiny | None = None,
) -> WaveGMS:
    """Load a trained :class:`~wavegms.WaveGMS` from a run folder or checkpoint folder.

    TAESD comes from ``tiny_vae`` if given, else from the run's ``taesd`` setting, else from
    ``$WAVEGMS_TAESD`` or the hub. The model is returned in eval mode on ``device``
    (default: :func:`~wavegms.get_device`).
    """
    from ..model import WaveGMS
    from ..tiny_vae import load_tiny_vae
    from ..utils.device import get_device

    folder = resolve_checkpoint(path)
    if tiny_vae is None:
        config = load_train_config(folder)
        tiny_vae = load_tiny_vae(config.taesd if config else None)
    model = WaveGMS.from_pretrained(folder, tiny_vae=tiny_vae)
    return model.to(get_device(device)).eval()


__all__ = [
    "CURVES",
    "LOG",
    "METRICS",
    "SPLITS",
    "TRAINING_STATE",
    "TRAIN_CONFIG",
    "atomic_torch_save",
    "clear_unfinished_run",
    "find_run_dir",
    "load_model",
    "load_train_config",
    "load_training_state",
    "recover_run_dir",
    "resolve_config",
    "resolve_checkpoint",
    "restore_training_state",
    "run_status",
    "save_best",
    "save_last",
    "training_state",
    "write_log",
]
