"""Train-time augmentation on the batch's own device (docs/paper_map.md, "Training").

On Colab's 2 CPU cores, per-sample CPU augmentation starves the GPU, so augmentation runs
on whole batches wherever the batch lives. Flips and 90-degree rotations are exact index
operations; colour jitter and the shift/scale/rotate affine come from kornia, which
resamples masks with nearest-neighbour so they stay binary.

Like the training step, a call reads nothing back from the device (no ``.item()``, no
``if tensor``, no ``nonzero``): every per-sample choice is a tensor that selects, so the host
queues the next step's work without waiting for the device.
"""

from __future__ import annotations

import functools

import torch
from torch import nn


class Augment(nn.Module):
    """Joint image/mask augmentation with the paper's defaults (docs/paper_map.md, "Training").

    In order, each drawn per sample: horizontal flip (p ``hflip``), vertical flip (p
    ``vflip``), rotation by a random multiple of 90 degrees (p ``rot90``; square images only,
    otherwise 180 degrees), colour jitter of brightness, contrast, saturation and hue by
    ``jitter`` (p ``jitter_p``, image only), and an affine transform with shift ``shift``,
    scale ``1 +- scale`` and rotation ``+- degrees`` (p ``affine_p``; zero padding).

    ``forward(images, masks)``: ``images [B, 3, H, W]`` float in [0, 1], ``masks [B, 1, H, W]``
    in {0, 1} -> the same shapes, device and dtypes; images clamped to [0, 1], masks exactly
    binary and geometrically aligned with their images. Random draws use torch's generators:
    ``torch.manual_seed`` makes it deterministic.

    Keep the module itself on the CPU (it holds no tensors; don't ``.to(device)`` it) and give it
    batches on any device: kornia then draws its parameters on the host and sends them to the
    batch's device without waiting. Moved to a GPU, kornia would read its draws back several
    times a call (kornia 0.9: the colour jitter checks its 4 factors, the affine copies its
    angle, scale and shift to the CPU).
    """

    def __init__(
        self,
        hflip: float = 0.5,
        vflip: float = 0.5,
        rot90: float = 0.5,
        jitter: float = 0.1,
        jitter_p: float = 0.2,
        shift: float = 0.15,
        scale: float = 0.1,
        degrees: float = 20.0,
        affine_p: float = 0.4,
    ) -> None:
        super().__init__()
        # kornia costs ~0.3 s to import: only pay for it when augmenting.
        import kornia.augmentation as K

        self.hflip, self.vflip, self.rot90 = hflip, vflip, rot90
        steps = []
        if jitter_p > 0 and jitter > 0:
            steps.append(K.ColorJitter(jitter, jitter, jitter, jitter, p=jitter_p))
        if affine_p > 0:
            steps.append(
                K.RandomAffine(
                    degrees=degrees,
                    translate=(shift, shift),
                    scale=(1.0 - scale, 1.0 + scale),
                    padding_mode="zeros",
                    p=affine_p,
                )
            )
        # Masks get nearest-neighbour resampling (kornia's default for the "mask" key), and
        # intensity steps such as ColorJitter are applied to the input only.
        self.kornia = (
            K.AugmentationSequential(*steps, data_keys=["input", "mask"]) if steps else None
        )

    def forward(
        self, images: torch.Tensor, masks: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if images.ndim != 4 or masks.ndim != 4 or images.shape[1] != 3 or masks.shape[1] != 1:
            raise ValueError(
                f"expected images [B, 3, H, W] and masks [B, 1, H, W]; got "
                f"{tuple(images.shape)} and {tuple(masks.shape)}"
            )
        if images.shape[0] != masks.shape[0] or images.shape[-2:] != masks.shape[-2:]:
            raise ValueError(
                f"images {tuple(images.shape)} and masks {tuple(masks.shape)} "
                "differ in batch size or spatial size"
            )
        image_dtype, mask_dtype = images.dtype, masks.dtype
        # kornia's colour maths wants float32; half inputs come back as half.
        x = images.float()
        m = (masks > 0.5).float()
        b, device = x.shape[0], x.device

        # The flips and the rotation, drawn as before, compose into one of the 16 ways to lay
        # out the pixels: one gather moves them (the host never sees which).
        hflip = torch.rand(b, device=device) < self.hflip
        vflip = torch.rand(b, device=device) < self.vflip
        apply = torch.rand(b, device=device) < self.rot90
        turns = quarter_turns(*x.shape[-2:])
        # Like albumentations' RandomRotate90: when applied, k is uniform in `turns`.
        choice = torch.randint(0, len(turns), (b,), device=device) * apply
        layout = hflip.long() + 2 * vflip.long() + 4 * choice
        index = pixel_layouts(*x.shape[-2:], device)[layout][:, None]  # [B, 1, H * W]
        x = x.flatten(2).gather(2, index.expand(-1, x.shape[1], -1)).view_as(x)
        m = m.flatten(2).gather(2, index).view_as(m)

        if self.kornia is not None:
            x, m = self.kornia(x, m)
        x = x.clamp_(0.0, 1.0)
        m = m > 0.5
        return x.to(image_dtype), m.to(mask_dtype)


def quarter_turns(height: int, width: int) -> tuple[int, ...]:
    """The rotations by k quarter turns that keep an image's shape: all four when it is
    square, else 0 and 180 degrees."""
    return (0, 1, 2, 3) if height == width else (0, 2)


@functools.lru_cache(maxsize=8)  # one per image size and device: 16 x H x W int64 each
def pixel_layouts(height: int, width: int, device: torch.device) -> torch.Tensor:
    """``[16, H * W]`` (or ``[8, H * W]`` for a non-square image) int64: row ``hflip + 2 *
    vflip + 4 * i`` holds, for each output pixel, the flat index of the input pixel it takes
    after a horizontal flip (if ``hflip``), a vertical flip (if ``vflip``) and
    ``quarter_turns(height, width)[i]`` rotations by 90 degrees, in that order. Built by
    applying those very operations to the pixels' indices."""
    pixels = torch.arange(height * width, device=device).view(height, width)
    layouts = []
    for turns in quarter_turns(height, width):
        for vflip in (False, True):
            for hflip in (False, True):
                index = pixels.flip(-1) if hflip else pixels
                index = index.flip(-2) if vflip else index
                layouts.append(torch.rot90(index, turns, dims=(-2, -1)).reshape(-1))
    return torch.stack(layouts)
