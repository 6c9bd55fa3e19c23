"""The Latent Mapping Model: the GMS residual-attention UNet at latent resolution.

(docs/paper_map.md, "Model".)

It maps the encoder's image latent ``z`` to a predicted mask latent. Every block keeps the
latent resolution (28 x 28 for 224 px input): only the channel width changes. Deep supervision
heads read the last three decoder blocks; the authors' code also builds a head on the first
decoder block that no loss uses (4,864 parameters), which we leave out.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .norm import GroupNorm

HEAD_NAMES = ("level2", "level1", "out")  # the supervised heads, coarse to fine; "out" predicts


def _norm(channels: int) -> GroupNorm:
    return GroupNorm(16, channels, eps=1e-6)


class ResBlock(nn.Module):
    """GroupNorm(16) -> PReLU -> 3x3 conv, twice, plus a bias-free 1x1 shortcut where needed."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.block = nn.Sequential(
            _norm(in_channels),
            nn.PReLU(),
            nn.Conv2d(in_channels, out_channels, 3, padding=1),
            _norm(out_channels),
            nn.PReLU(),
            nn.Conv2d(out_channels, out_channels, 3, padding=1),
        )
        self.shortcut = (
            nn.Identity()
            if in_channels == out_channels
            else nn.Conv2d(in_channels, out_channels, 1, bias=False)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shortcut(x) + self.block(x)


class SpatialSelfAttention(nn.Module):
    """Single-head self-attention over all positions, with a residual connection."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.norm = _norm(channels)
        self.q = nn.Conv2d(channels, channels, 1)
        self.k = nn.Conv2d(channels, channels, 1)
        self.v = nn.Conv2d(channels, channels, 1)
        self.proj = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        x_norm = self.norm(x)
        # [B, 1, HW, C]: one head; SDPA picks a fused kernel and scales by C^-1/2.
        q, k, v = (
            proj(x_norm).flatten(2).transpose(1, 2)[:, None] for proj in (self.q, self.k, self.v)
        )
        if x.device.type == "cpu":
            # At these sizes (784 positions, 32-128 channels) two matmuls beat PyTorch's fused
            # CPU attention kernel 2-4x; on GPUs the fused kernel wins. The scale goes on q
            # (HW x C), not on the scores (HW x HW), and softmax keeps their dtype: its CPU
            # kernel computes in fp32 anyway, and an fp32 copy of bf16 scores cost 3-6x the time.
            attended = torch.softmax((q * c**-0.5) @ k.transpose(-1, -2), dim=-1) @ v
        else:
            attended = F.scaled_dot_product_attention(q, k, v)
        return x + self.proj(attended[:, 0].transpose(1, 2).reshape(b, c, h, w))


class ResAttentionBlock(nn.Sequential):
    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(ResBlock(in_channels, out_channels), SpatialSelfAttention(out_channels))


def _head(channels: int, latent_channels: int) -> nn.Sequential:
    return nn.Sequential(
        _norm(channels), nn.SiLU(), nn.Conv2d(channels, latent_channels, 3, padding=1, bias=False)
    )


class LatentMappingModel(nn.Module):
    """``z [B, 4, h, w] -> (level2, level1, out)``, each a mask-latent prediction ``[B, 4, h, w]``.

    Stem 4 -> 32; encoder blocks 32->32, 32->64, 64->128, 128->128; decoder blocks with skip
    concatenation (128+128)->128, (128+64)->64, (64+32)->32, (32+32)->32. Parameters in the
    paper configuration: 1,560,112 (1,564,976 with the authors' unused head).
    """

    def __init__(
        self,
        latent_channels: int = 4,
        base_channels: int = 32,
        channel_mult: Sequence[int] = (1, 2, 4, 4),
    ) -> None:
        super().__init__()
        widths = [base_channels * m for m in channel_mult]  # 32, 64, 128, 128
        self.stem = nn.Conv2d(latent_channels, base_channels, 3, padding=1)
        self.down = nn.ModuleList(
            ResAttentionBlock(c_in, c_out) for c_in, c_out in zip([base_channels, *widths], widths)
        )
        # Decoder: each block joins the previous output with the skip one level shallower.
        skips = [base_channels, *widths[:-1]]  # 32 (stem), 32, 64, 128
        ups, channels = [], widths[-1]
        for skip in reversed(skips):
            ups.append(ResAttentionBlock(channels + skip, skip))
            channels = skip
        self.up = nn.ModuleList(ups)
        # Heads on the last three decoder blocks (their outputs: 64, 32, 32 channels).
        self.heads = nn.ModuleList(_head(c, latent_channels) for c in reversed(skips[:3]))
        self._init_weights()

    def _init_weights(self) -> None:
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="leaky_relu")
                if module.bias is not None:
                    nn.init.zeros_(module.bias)

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, ...]:
        x = self.stem(z)
        skips = [x]
        for block in self.down:
            x = block(x)
            skips.append(x)
        skips.pop()  # the deepest output is the decoder's input, not a skip
        decoded = []
        for block in self.up:
            x = block(torch.cat([skips.pop(), x], dim=1))
            decoded.append(x)
        return tuple(head(x) for head, x in zip(self.heads, decoded[1:]))
