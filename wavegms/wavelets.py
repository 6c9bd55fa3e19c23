"""The Haar wavelet pyramid that feeds the multi-resolution encoder (docs/paper_map.md, "Model").

One cascade of single-level orthonormal Haar DWTs (ptwt, with PyWavelets' ``haar`` filters):
level ``l`` splits the previous approximation ``LL_{l-1}`` into ``LL_l`` and its three detail bands.
Each level is divided by ``2**l`` so that ``LL_l`` stays in the image's range: the orthonormal
Haar approximation of a constant image ``c`` is ``c * 2**l``.
"""

from __future__ import annotations

import contextlib

import ptwt
import pywt
import torch

HAAR = pywt.Wavelet("haar")
BANDS = ("LL", "H", "V", "D")


def haar_pyramid(images: torch.Tensor, levels: int = 3) -> list[torch.Tensor]:
    """Multi-level Haar decomposition of a batch of images.

    Args:
        images: ``[B, C, H, W]`` float, any device; H and W divisible by ``2**levels``.
        levels: number of levels (3 in Wave-GMS).

    Returns:
        ``levels`` tensors; entry ``l-1`` is ``[B, 4C, H/2^l, W/2^l]`` holding
        ``cat(LL_l, H_l, V_l, D_l) / 2^l`` along channels (C channels per band, in that order;
        H, V, D as PyWavelets names its detail coefficients ``cH, cV, cD``).
    """
    if images.ndim != 4:
        raise ValueError(f"haar_pyramid expects [B, C, H, W], got shape {tuple(images.shape)}")
    height, width = images.shape[-2:]
    if height % 2**levels or width % 2**levels:
        raise ValueError(
            f"image size {height}x{width} is not divisible by {2**levels} ({levels} Haar levels)"
        )
    pyramid = []
    # ptwt accepts fp32/fp64 only, and the transform is cheap: keep it exact under autocast.
    approx = images if images.dtype in (torch.float32, torch.float64) else images.float()
    with _autocast_disabled(images.device):
        for level in range(1, levels + 1):
            # Haar filters have length 2: even sizes need no padding, so the mode is irrelevant.
            approx, (horizontal, vertical, diagonal) = ptwt.wavedec2(
                approx, HAAR, level=1, mode="zero"
            )
            bands = torch.cat([approx, horizontal, vertical, diagonal], dim=1) / 2**level
            pyramid.append(bands.to(images.dtype))
    return pyramid


def _autocast_disabled(device: torch.device) -> contextlib.AbstractContextManager:
    try:
        return torch.autocast(device.type, enabled=False)
    except RuntimeError:  # a device type without autocast support
        return contextlib.nullcontext()
