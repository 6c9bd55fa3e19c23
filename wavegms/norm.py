"""The GroupNorm of the encoder and the LMM: ``nn.GroupNorm`` that keeps channels-last cheaply.

With ``--channels-last`` every feature map of the encoder and the LMM is channels-last, and two
of PyTorch's GroupNorm kernels handle that badly:

- CPU: the separate channels-last kernel is 5-15x slower than the contiguous one for maps of
  fewer than 32 x 32 positions (the 28 x 28 latent resolution of a 224 px image, where the LMM,
  the aggregator and the coarsest extractor run), in bf16 most of all (e.g. 157 vs 13 us for
  ``[1, 64, 28, 28]`` bf16; 32 x 32 and larger run at the same speed; torch 2.13 on a 2-core
  AMD EPYC).
- CUDA: GroupNorm normalises a contiguous copy and returns a contiguous tensor at any size, so
  the activation, the residual sum and the next convolution after it see the other layout
  (mixed-layout sums, and a conversion back before the channels-last convolution).

There (:func:`takes_contiguous_copy`, the one place that knows which device needs what), this
module hands the kernel a contiguous copy and gives the result back in channels-last, so that
everything after it stays channels-last. The arithmetic is the same kernel's either way, so
results match ``nn.GroupNorm`` to rounding. Parameters and ``state_dict`` keys are
``nn.GroupNorm``'s.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

SLOW_CHANNELS_LAST_POSITIONS = 32 * 32  # below this many positions the CPU kernel is slow
# Per device type: below how many positions (H x W) a channels-last input goes through a
# contiguous copy and comes back channels-last. Other devices keep nn.GroupNorm's path.
CONTIGUOUS_COPY_BELOW = {
    "cpu": SLOW_CHANNELS_LAST_POSITIONS,  # the slow channels-last kernel
    "cuda": math.inf,  # the kernel returns a contiguous tensor at any size
}


class GroupNorm(nn.GroupNorm):
    """``nn.GroupNorm`` for ``[B, C, H, W]`` inputs in any memory format; output in the input's."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if takes_contiguous_copy(x.device.type, x.shape, _channels_last_only(x)):
            return super().forward(x.contiguous()).contiguous(memory_format=torch.channels_last)
        return super().forward(x)


def takes_contiguous_copy(device_type: str, shape: Sequence[int], channels_last: bool) -> bool:
    """True when :class:`GroupNorm` normalises a contiguous copy of its input and returns it in
    channels-last: a ``channels_last`` (and not also contiguous) ``[B, C, H, W]`` input on a
    device type of :data:`CONTIGUOUS_COPY_BELOW`, with fewer positions than its limit there."""
    limit = CONTIGUOUS_COPY_BELOW.get(device_type, 0)
    return channels_last and len(shape) == 4 and shape[-2] * shape[-1] < limit


def _channels_last_only(x: torch.Tensor) -> bool:
    # A map with one position (or one channel) is both; nn.GroupNorm keeps it as it is.
    return (
        x.ndim == 4 and not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last)
    )
