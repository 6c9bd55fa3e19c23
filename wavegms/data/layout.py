"""The prepared layout: the one contract between ``data_download`` (writes it) and
:mod:`wavegms.data` (reads it).

::

    DATA_DIR/<dataset>/images/<name>.png   8-bit grey or RGB
    DATA_DIR/<dataset>/masks/<name>.png    single channel, 0/255
    DATA_DIR/<dataset>/info.json           {"dataset", "layout_version", "counts", "classes", ...}

Only the standard library (and :mod:`.images`: numpy, Pillow) is imported: preparing data
must not import torch.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from ..utils.atomic import atomic_write_json
from .images import IMAGE_EXTENSIONS

DATASETS: tuple[str, ...] = ("busi", "bus", "kvasir_instrument", "ham10000")
IMAGES = "images"
MASKS = "masks"
INFO = "info.json"
LAYOUT_VERSION = 1


def natural_key(name: str) -> list[Any]:
    """Sort key that puts ``benign_2`` before ``benign_10``."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


def prepare_command(root: Path) -> str:
    """The command that prepares ``root`` (= ``DATA_DIR/<dataset>``)."""
    dataset = root.name if root.name in DATASETS else "<dataset>"
    return f"python -m data_download {dataset} --root {root.parent}"


def read_info(folder: str | Path) -> dict[str, Any]:
    """``folder/info.json`` as a dict (empty when there is none).

    Raises:
        ValueError: the file is not a JSON object (names it and what to do).
    """
    path = Path(folder) / INFO
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    try:
        info = json.loads(text)
    except ValueError as e:
        raise ValueError(f"{path} is not valid JSON ({e}); prepare the dataset again") from e
    if not isinstance(info, dict):
        raise ValueError(f"{path} is not a JSON object; prepare the dataset again")
    return info


def write_info(folder: str | Path, info: dict[str, Any]) -> Path:
    """Write ``folder/info.json`` atomically; returns its path."""
    return atomic_write_json(Path(folder) / INFO, info)


def _index(folder: Path) -> dict[str, Path]:
    """name -> file for the image files of one folder (one listing, no per-file stat)."""
    out: dict[str, Path] = {}
    for p in folder.iterdir():
        if p.suffix.lower() not in IMAGE_EXTENSIONS or p.name.startswith("."):
            continue
        # A .png wins over a same-named file of another format (the prepared layout).
        if p.stem not in out or p.suffix.lower() == ".png":
            out[p.stem] = p
    return out


def scan_layout(root: str | Path) -> tuple[dict[str, Path], dict[str, Path]]:
    """``(name -> image file, name -> mask file)`` of a prepared dataset folder.

    Raises:
        FileNotFoundError: ``root``, ``root/images`` or ``root/masks`` is missing; the message
            names the folder and the command that prepares it.
    """
    root = Path(root)
    for folder in (root, root / IMAGES, root / MASKS):
        if not folder.is_dir():
            raise FileNotFoundError(
                f"{folder} not found: {root} is not a prepared dataset folder (expected "
                f"{root}/{IMAGES}/<name>.png and {root}/{MASKS}/<name>.png). Prepare it with:\n"
                f"  {prepare_command(root)}"
            )
    return _index(root / IMAGES), _index(root / MASKS)


def list_names(root: str | Path) -> list[str]:
    """All item names of a prepared folder, naturally sorted.

    Raises:
        FileNotFoundError: wrong layout, or an image without its mask (names the files).
    """
    images, masks = scan_layout(root)
    lonely = sorted(set(images) - set(masks), key=natural_key)
    if lonely:
        raise FileNotFoundError(
            f"{len(lonely)} images in {Path(root) / IMAGES} have no mask in "
            f"{Path(root) / MASKS} (e.g. {', '.join(lonely[:3])}); prepare the dataset "
            f"again: {prepare_command(Path(root))} --force"
        )
    return sorted(images, key=natural_key)


__all__ = [
    "DATASETS",
    "IMAGES",
    "INFO",
    "LAYOUT_VERSION",
    "MASKS",
    "list_names",
    "natural_key",
    "prepare_command",
    "read_info",
    "scan_layout",
    "write_info",
]
