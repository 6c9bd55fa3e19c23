"""The dataset class for the prepared layout (:mod:`wavegms.data.layout`)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from .images import load_image, load_mask
from .layout import list_names, prepare_command, read_info, scan_layout
from .tensors import resize_pair, to_tensors


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

    def load_original(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """Item ``i`` at its original resolution: ``[H, W, 3]`` float32 and ``[H, W]`` bool.

        Raises:
            ValueError: corrupt file, or image and mask sizes differ (names both files).
        """
        try:
            image = load_image(self.image_path(i))
            mask = load_mask(self.mask_path(i))
        except ValueError as error:
            if error.__cause__ is None:  # not damage (e.g. over the pixel limit): said already
                raise
            raise ValueError(
                f"{error} Prepare the dataset again ({prepare_command(self.root)} --force)."
            ) from error.__cause__
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
