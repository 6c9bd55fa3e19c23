"""The trainable multi-resolution wavelet encoder, LiteVAE-style (docs/paper_map.md, "Encoder").

Each Haar level goes through its own :class:`UNetBlock` (no spatial resampling), levels 1 and 2
are average-pooled to H/8, the three 12-channel maps are concatenated and an aggregator
:class:`UNetBlock` maps the 36 channels to the 8 moments of a diagonal Gaussian, diffusers'
``DiagonalGaussianDistribution``: mean ``mu`` (4) and log-variance (4, clamped to [-30, 20]).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from diffusers.models.autoencoders.vae import DiagonalGaussianDistribution
from torch import nn

from .norm import GroupNorm
from .wavelets import haar_pyramid


class ResBlock(nn.Module):
    """GroupNorm -> SiLU -> 3x3 conv, twice, plus a 1x1 conv shortcut where channels change."""

    def __init__(self, in_channels: int, out_channels: int, groups: int = 8) -> None:
        super().__init__()
        self.block = nn.Sequential(
            GroupNorm(groups, in_channels),
            nn.SiLU(),
            nn.Conv2d(in_channels, out_channels, 3, padding=1),
            GroupNorm(groups, out_channels),
            nn.SiLU(),
            nn.Conv2d(out_channels, out_channels, 3, padding=1),
        )
        self.shortcut = (
            nn.Identity()
            if in_channels == out_channels
            else nn.Conv2d(in_channels, out_channels, 1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shortcut(x) + self.block(x)


class UNetBlock(nn.Module):
    """A UNet without resampling: ``[B, in, h, w] -> [B, out, h, w]``.

    3x3 conv to ``base`` channels; encoder stages of ``blocks_per_stage`` residual blocks at
    ``base * mult`` channels; a middle of two residual blocks; the mirrored decoder stages, each
    block taking the matching encoder output concatenated to its input; 3x3 conv out.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        base_channels: int = 16,
        channel_mult: Sequence[int] = (1, 2, 2),
        blocks_per_stage: int = 2,
    ) -> None:
        super().__init__()
        self.conv_in = nn.Conv2d(in_channels, base_channels, 3, padding=1)
        widths = [base_channels * m for m in channel_mult for _ in range(blocks_per_stage)]
        self.down = nn.ModuleList(
            ResBlock(c_in, c_out) for c_in, c_out in zip([base_channels, *widths], widths)
        )
        self.mid = nn.Sequential(ResBlock(widths[-1], widths[-1]), ResBlock(widths[-1], widths[-1]))
        # Decoder block i consumes the skip of encoder block -i-1 and outputs that block's
        # input width mirrored: channels come back down the way they went up.
        ups, channels = [], widths[-1]
        for skip, c_out in zip(reversed(widths), reversed(widths)):
            ups.append(ResBlock(channels + skip, c_out))
            channels = c_out
        self.up = nn.ModuleList(ups)
        self.conv_out = nn.Conv2d(channels, out_channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv_in(x)
        skips = []
        for block in self.down:
            x = block(x)
            skips.append(x)
        x = self.mid(x)
        for block in self.up:
            x = block(torch.cat([x, skips.pop()], dim=1))
        return self.conv_out(x)


class MultiResolutionEncoder(nn.Module):
    """Images ``[B, 3, H, W]`` in [0, 1] -> ``(mu, logvar)``, each ``[B, 4, H/8, W/8]``.

    Trainable parameters in the paper configuration: 3 x 258,204 (per-level extractors) +
    261,080 (aggregator) = 1,035,692.
    """

    def __init__(
        self,
        in_channels: int = 3,
        latent_channels: int = 4,
        levels: int = 3,
        base_channels: int = 16,
        channel_mult: Sequence[int] = (1, 2, 2),
        blocks_per_stage: int = 2,
    ) -> None:
        super().__init__()
        self.levels = levels
        band_channels = 4 * in_channels  # LL, H, V, D per colour channel
        self.extractors = nn.ModuleList(
            UNetBlock(band_channels, band_channels, base_channels, channel_mult, blocks_per_stage)
            for _ in range(levels)
        )
        self.aggregator = UNetBlock(
            levels * band_channels,
            2 * latent_channels,
            base_channels,
            channel_mult,
            blocks_per_stage,
        )

    def posterior(self, images: torch.Tensor) -> DiagonalGaussianDistribution:
        """The latent distribution of ``images``: ``.mode()`` is ``mu``, ``.sample()`` draws
        ``mu + sigma * eps``; ``.logvar`` is clamped to [-30, 20]."""
        features = []
        for level, (bands, extractor) in enumerate(
            zip(haar_pyramid(images, self.levels), self.extractors), start=1
        ):
            pool = 2 ** (self.levels - level)  # bring every level to H / 2^levels
            feature = extractor(bands)
            features.append(F.avg_pool2d(feature, pool) if pool > 1 else feature)
        return DiagonalGaussianDistribution(self.aggregator(torch.cat(features, dim=1)))

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(mu, logvar)`` of :meth:`posterior`."""
        posterior = self.posterior(images)
        return posterior.mean, posterior.logvar
