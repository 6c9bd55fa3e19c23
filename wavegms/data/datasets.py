"""The dataset class for the prepared layout ``DATA_DIR/<dataset>/{images,masks}/<name>.png``."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from .io import image_size, load_image, load_mask, resize_pair, to_tensors

DATASETS: tuple[str, ...] = ("busi", "bus", "kvasir_instrument", "ham10000")
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


def natural_key(name: str) -> list[Any]:
    """Sort key that puts ``benign_2`` before ``benign_10``."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


def prepare_command(root: Path) -> str:
    """The command that prepares ``root`` (= ``DATA_DIR/<dataset>``)."""
    dataset = root.name if root.name in DATASETS else "<dataset>"
    return f"python -m data_download {dataset} --root {root.parent}"


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
    for folder in (root, root / "images", root / "masks"):
        if not folder.is_dir():
            raise FileNotFoundError(
                f"{folder} not found: {root} is not a prepared dataset folder (expected "
                f"{root}/images/<name>.png and {root}/masks/<name>.png). Prepare it with:\n"
                f"  {prepare_command(root)}"
            )
    return _index(root / "images"), _index(root / "masks")


def read_info(root: str | Path) -> dict[str, Any]:
    """``root/info.json`` as a dict ({} when there is none)."""
    path = Path(root) / "info.json"
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except ValueError as e:
        raise ValueError(f"{path} is not valid JSON ({e}); prepare the dataset again") from e


def list_names(root: str | Path) -> list[str]:
    """All item names of a prepared folder, naturally sorted.

    Raises:
        FileNotFoundError: wrong layout, or an image without its mask (names the files).
    """
    images, masks = scan_layout(root)
    lonely = sorted(set(images) - set(masks), key=natural_key)
    if lonely:
        raise FileNotFoundError(
            f"{len(lonely)} images in {Path(root) / 'images'} have no mask in "
            f"{Path(root) / 'masks'} (e.g. {', '.join(lonely[:3])}); prepare the dataset "
            f"again: {prepare_command(Path(root))} --force"
        )
    return sorted(images, key=natural_key)


class SegmentationDataset(Dataset):
    """Image/mask pairs of a prepared dataset folder, resized to the model size.

    Args:
        root: the dataset folder, ``DATA_DIR/<dataset>``.
        names: the items to use (e.g. one split); all items when None.
        image_size: side ``S`` of the square model input.
        cache: keep decoded, resized items in memory after their first use, saving the PNG
            decoding on every epoch when CPU cores are few (Colab has 2). Cached images are
            stored as 8-bit, like the files (at most 0.5/255 from the uncached values), so
            224 px BUSI takes ~100 MB.

    Items are dicts: ``image`` float32 ``[3, S, S]`` in [0, 1] (bilinear, antialiased; grey
    replicated to 3 channels), ``mask`` float32 ``[1, S, S]`` in {0, 1} (nearest), ``name``.

    Raises:
        FileNotFoundError: missing folder or files (the message names them and the command
            that prepares the dataset). ``__getitem__`` raises ValueError for a corrupt file or
            an image/mask size mismatch, naming the files.
    """

    def __init__(
        self,
        root: str | Path,
        names: Sequence[str] | None = None,
        image_size: int = 224,
        *,
        cache: bool = False,
    ) -> None:
        self.root = Path(root)
        images, masks = scan_layout(self.root)
        if names is None:
            names = list_names(self.root)
        else:
            names = list(names)
            missing = [n for n in names if n not in images or n not in masks]
            if missing:
                raise FileNotFoundError(
                    f"{len(missing)} of {len(names)} requested items are not in {self.root} "
                    f"(e.g. {', '.join(missing[:3])}). Is it the right dataset, and is it "
                    f"completely prepared? ({prepare_command(self.root)})"
                )
        self.names: list[str] = names
        self.image_size = int(image_size)
        self._images = {n: images[n] for n in names}
        self._masks = {n: masks[n] for n in names}
        self.info = read_info(self.root)
        all_classes = self.info.get("classes") or {}
        classes = {n: all_classes[n] for n in names if n in all_classes}
        self.classes: dict[str, str] | None = classes or None
        self._cache: dict[int, tuple[torch.Tensor, torch.Tensor]] | None = {} if cache else None

    def __len__(self) -> int:
        return len(self.names)

    def image_path(self, i: int) -> Path:
        return self._images[self.names[i]]

    def mask_path(self, i: int) -> Path:
        return self._masks[self.names[i]]

    def original_size(self, i: int) -> tuple[int, int]:
        """``(H, W)`` of item ``i``'s image file on disk (read from its header only)."""
        return image_size(self.image_path(i))

    def load_original(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """Item ``i`` at its original resolution: ``[H, W, 3]`` float32 and ``[H, W]`` bool.

        Raises:
            ValueError: corrupt file, or image and mask sizes differ (names both files).
        """
        image = load_image(self.image_path(i))
        mask = load_mask(self.mask_path(i))
        if mask.shape != image.shape[:2]:
            raise ValueError(
                f"size mismatch for item {self.names[i]!r}: image {self.image_path(i)} is "
                f"{image.shape[0]}x{image.shape[1]} but mask {self.mask_path(i)} is "
                f"{mask.shape[0]}x{mask.shape[1]} (HxW); prepare the dataset again "
                f"({prepare_command(self.root)} --force)"
            )
        return image, mask

    def __getitem__(self, i: int) -> dict[str, Any]:
        if not 0 <= i < len(self.names):
            if -len(self.names) <= i < 0:
                i += len(self.names)
            else:
                raise IndexError(f"index {i} out of range for {len(self.names)} items")
        if self._cache is not None and i in self._cache:
            img8, msk8 = self._cache[i]
            return {"image": img8.float() / 255.0, "mask": msk8.float(), "name": self.names[i]}
        image, mask = resize_pair(*to_tensors(*self.load_original(i)), self.image_size)
        if self._cache is not None:
            self._cache[i] = ((image * 255.0).round().to(torch.uint8), mask.to(torch.uint8))
            image = self._cache[i][0].float() / 255.0  # the first access equals the later ones
        return {"image": image, "mask": mask, "name": self.names[i]}

    def __repr__(self) -> str:
        return (
            f"SegmentationDataset(root={str(self.root)!r}, n={len(self)}, "
            f"image_size={self.image_size})"
        )
