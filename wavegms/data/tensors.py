"""Decoded images and masks as model-sized tensors.

File decoding (PIL modes, 16-bit, alpha, lossy masks) lives in :mod:`wavegms.data.images`,
which the preparation step (``data_download``) uses too, so a mask means the same thing in
both; this module adds the torch side: tensors and resizing.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["resize_image", "resize_pair", "to_tensors"]


def to_tensors(image: np.ndarray, mask: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """``[H, W, 3]`` float image and ``[H, W]`` bool mask -> ``[3, H, W]`` and ``[1, H, W]``
    float32 tensors (mask values in {0, 1})."""
    img = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32)).permute(2, 0, 1)
    msk = torch.from_numpy(np.ascontiguousarray(mask, dtype=np.float32))[None]
    return img.contiguous(), msk


def resize_pair(
    image: torch.Tensor, mask: torch.Tensor, size: int | tuple[int, int]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Resize ``image [3, H, W]`` (bilinear, antialiased) and ``mask [1, H, W]`` (nearest).

    The image stays in [0, 1]; the mask stays exactly binary. ``nearest-exact`` samples pixel
    centres like PIL and OpenCV do, so the mask does not shift by half a pixel.
    """
    size = (size, size) if isinstance(size, int) else tuple(size)
    if tuple(image.shape[-2:]) == size:
        return image, mask
    return resize_image(image, size), F.interpolate(mask[None], size=size, mode="nearest-exact")[0]


def resize_image(image: torch.Tensor, size: int | tuple[int, int]) -> torch.Tensor:
    """Resize ``image [3, H, W]`` in [0, 1] bilinearly with antialiasing; stays in [0, 1]."""
    size = (size, size) if isinstance(size, int) else tuple(size)
    return F.interpolate(
        image[None], size=size, mode="bilinear", align_corners=False, antialias=True
    )[0].clamp_(0.0, 1.0)
