"""Run folders and atomic writes: nothing a user made is ever lost or half-written.

A training run folder (``RUN_DIR``) holds::

    train_config.json    the resolved TrainConfig
    splits.json          the item names of train / val / test (reproducibility)
    best/                WaveGMS.save_pretrained of the best validation epoch, + metrics.json
    last/                the same for the latest epoch, + training_state.pt (resume)
    log.jsonl            one JSON object per epoch
    curves.png           loss and validation Dice curves

Every file is written to a temporary sibling and moved into place with ``os.replace``.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from .config import TrainConfig

TRAIN_CONFIG = "train_config.json"
SPLITS = "splits.json"
TRAINING_STATE = "training_state.pt"
METRICS = "metrics.json"
LOG = "log.jsonl"


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _current_umask()


def _atomic(path: Path, write) -> None:  # noqa: ANN001 - write(file object)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600 files; give the usual permissions
        with os.fdopen(fd, "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` (UTF-8) atomically."""
    _atomic(Path(path), lambda file: file.write(text.encode()))


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (figures, other binary files)."""
    _atomic(Path(path), lambda file: file.write(data))


def atomic_write_json(path: str | Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2))


def atomic_torch_save(obj: Any, path: str | Path) -> None:
    """``torch.save`` atomically. Keep ``obj`` to tensors and plain Python values so that it
    loads with ``weights_only=True``."""
    _atomic(Path(path), lambda file: torch.save(obj, file))


def load_training_state(path: str | Path, map_location: str | torch.device = "cpu") -> dict:
    """Read a ``training_state.pt`` safely (``weights_only=True``: no arbitrary unpickling)."""
    return torch.load(path, map_location=map_location, weights_only=True)


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
    tiny_vae=None,  # noqa: ANN001
):
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
