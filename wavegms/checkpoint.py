"""Run folders: what a training run writes, and how it is read back.

A training run folder (``RUN_DIR``) holds::

    train_config.json    the resolved TrainConfig
    splits.json          the item names of train / val / test (reproducibility)
    best/                WaveGMS.save_pretrained of the best validation epoch, + metrics.json
    last/                the same for the latest epoch, + training_state.pt (resume)
    log.jsonl            one JSON object per epoch
    curves.png           loss and validation Dice curves

Every file is written atomically (:mod:`wavegms.atomic`); nothing is read with pickle:
weights with safetensors, ``training_state.pt`` with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from .atomic import atomic_write, atomic_write_bytes, atomic_write_json, atomic_write_text
from .config import TrainConfig
from .data.splits import SPLITS_FILE as SPLITS
from .schedule import sync_lr

if TYPE_CHECKING:
    from diffusers import AutoencoderTiny

    from .model import WaveGMS

TRAIN_CONFIG = "train_config.json"
TRAINING_STATE = "training_state.pt"
METRICS = "metrics.json"
LOG = "log.jsonl"
TEST_SELECTION_WARNING = (
    "the checkpoint is selected on the TEST split (paper protocol): its test scores are "
    "optimistic; select on validation for an honest estimate"
)


def atomic_torch_save(obj: Any, path: str | Path) -> None:
    """``torch.save`` atomically. Keep ``obj`` to tensors and plain Python values so that it
    loads with ``weights_only=True``."""
    atomic_write(path, lambda file: torch.save(obj, file))


def load_training_state(path: str | Path, map_location: str | torch.device = "cpu") -> dict:
    """Read a ``training_state.pt`` safely (``weights_only=True``: no arbitrary unpickling)."""
    return torch.load(path, map_location=map_location, weights_only=True)


def save_checkpoint(
    model: WaveGMS, run_dir: Path, name: str, record: dict[str, Any], selection: str
) -> None:
    """``RUN_DIR/<name>/``: the model's weights and the epoch's ``metrics.json``."""
    folder = run_dir / name
    model.save_pretrained(folder)
    metrics = {**record, "checkpoint": name, "selected_on": selection}
    if selection == "test":
        metrics["warning"] = TEST_SELECTION_WARNING
    atomic_write_json(folder / METRICS, metrics)


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
) -> tuple[int, dict[str, Any], list[dict[str, Any]]]:
    """Restore ``last/training_state.pt`` into the given objects; returns
    ``(start_epoch, best, history)``."""
    state = load_training_state(run_dir / "last" / TRAINING_STATE)
    if state["epoch"] > config.epochs:
        raise ValueError(
            f"{run_dir} has already trained {state['epoch']} epochs: --epochs must be at "
            f"least that (got {config.epochs})."
        )
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    sync_lr(scheduler)  # the schedule may have been extended
    if scaler is not None and state["scaler"] is not None:
        scaler.load_state_dict(state["scaler"])
    torch.set_rng_state(state["rng"]["torch"])
    if state["rng"]["cuda"] and len(state["rng"]["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["rng"]["cuda"])
    return state["epoch"], state["best"], state["history"]


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
    from .device import get_device
    from .model import WaveGMS
    from .tiny_vae import load_tiny_vae

    folder = resolve_checkpoint(path)
    if tiny_vae is None:
        config = load_train_config(folder)
        tiny_vae = load_tiny_vae(config.taesd if config else None)
    model = WaveGMS.from_pretrained(folder, tiny_vae=tiny_vae)
    return model.to(get_device(device)).eval()


__all__ = [
    "LOG",
    "METRICS",
    "SPLITS",
    "TRAINING_STATE",
    "TRAIN_CONFIG",
    "atomic_torch_save",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "find_run_dir",
    "load_model",
    "load_train_config",
    "load_training_state",
    "resolve_checkpoint",
    "restore_training_state",
    "save_checkpoint",
    "training_state",
    "write_log",
]
