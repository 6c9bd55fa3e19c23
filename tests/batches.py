"""Small deterministic image/mask batches for model tests."""

import torch


def disks(size: int, batch: int = 4, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Dark disks on a brighter noisy background, and their masks ``[B, 1, S, S]``."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    masks = []
    for _ in range(batch):
        cy, cx = (torch.rand(2, generator=g) * 0.4 + 0.3) * size
        radius = (torch.rand(1, generator=g) * 0.15 + 0.15) * size
        masks.append(((yy - cy) ** 2 + (xx - cx) ** 2 < radius**2).float())
    masks = torch.stack(masks)[:, None]
    noise = 0.05 * torch.randn(batch, 3, size, size, generator=g)
    images = (0.7 - 0.5 * masks + noise).clamp(0, 1)
    return images, masks
