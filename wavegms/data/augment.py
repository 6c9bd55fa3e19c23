"""Train-time augmentation on the batch's own device (docs/paper_map.md, "Training").

On Colab's 2 CPU cores, per-sample CPU augmentation starves the GPU, so augmentation runs
on whole batches wherever the batch lives. Flips and 90-degree rotations are exact index
operations; colour jitter and the shift/scale/rotate affine come from kornia, which
resamples masks with nearest-neighbour so they stay binary.
"""

from __future__ import annotations

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

    @staticmethod
    def _where(flag: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return torch.where(flag.view(-1, 1, 1, 1), a, b)

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

        flag = torch.rand(b, device=device) < self.hflip
        x, m = self._where(flag, x.flip(-1), x), self._where(flag, m.flip(-1), m)
        flag = torch.rand(b, device=device) < self.vflip
        x, m = self._where(flag, x.flip(-2), x), self._where(flag, m.flip(-2), m)

        apply = torch.rand(b, device=device) < self.rot90
        square = x.shape[-1] == x.shape[-2]
        # Like albumentations' RandomRotate90: when applied, k is uniform in {0, 1, 2, 3}.
        k = (
            torch.randint(0, 4, (b,), device=device)
            if square
            else 2 * torch.randint(0, 2, (b,), device=device)
        )
        k = torch.where(apply, k, torch.zeros_like(k))
        if bool((k > 0).any()):
            x, m = x.clone(), m.clone()
            for turns in (1, 2, 3):
                idx = (k == turns).nonzero(as_tuple=True)[0]
                if idx.numel():
                    x[idx] = torch.rot90(x[idx], turns, dims=(-2, -1))
                    m[idx] = torch.rot90(m[idx], turns, dims=(-2, -1))

        if self.kornia is not None:
            x, m = self.kornia(x, m)
        x = x.clamp_(0.0, 1.0)
        m = m > 0.5
        return x.to(image_dtype), m.to(mask_dtype)
