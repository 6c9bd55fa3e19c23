"""The GroupNorm of the encoder and the LMM: ``nn.GroupNorm`` with a workaround for one slow kernel.

PyTorch's CPU GroupNorm has a separate channels-last kernel. For maps of fewer than 32 x 32
positions (the 28 x 28 latent resolution of a 224 px image, where the LMM, the aggregator and the
coarsest extractor run) its forward pass is 5-15x slower than the contiguous kernel, in bf16 most
of all (e.g. 157 vs 13 us for ``[1, 64, 28, 28]`` bf16; 32 x 32 and larger run at the same speed;
torch 2.13 on a 2-core AMD EPYC). There, this module hands the contiguous kernel a contiguous copy
and gives the result back in channels-last: the copies cost far less than the slow path saves.
The arithmetic is the same kernel's either way, so results match ``nn.GroupNorm`` to rounding.
Parameters and ``state_dict`` keys are ``nn.GroupNorm``'s.
"""

from __future__ import annotations

import torch
from torch import nn

SLOW_CHANNELS_LAST_POSITIONS = 32 * 32  # below this many positions the CPU kernel is slow


class GroupNorm(nn.GroupNorm):
    """``nn.GroupNorm`` for ``[B, C, H, W]`` inputs in any memory format; output in the input's."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if _slow_on_cpu(x):
            return super().forward(x.contiguous()).contiguous(memory_format=torch.channels_last)
        return super().forward(x)


def _slow_on_cpu(x: torch.Tensor) -> bool:
    return (
        x.device.type == "cpu"
        and x.ndim == 4
        and x.shape[-2] * x.shape[-1] < SLOW_CHANNELS_LAST_POSITIONS
        and not x.is_contiguous()
        and x.is_contiguous(memory_format=torch.channels_last)
    )
