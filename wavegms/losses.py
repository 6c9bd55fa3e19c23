"""The Wave-GMS training objective; every weight is 1 and there is no KL term.

(docs/paper_map.md, "Objective".)

For each supervised head k (level2, level1, out):
    latent loss  MSE(z_hat_k, z_mask)
    mask loss    soft Dice(decode(z_hat_k), m), smooth 1e-5, averaged per sample
plus, once, the alignment of the encoder latent z with TAESD's latent of the image:
    0.9 * (1 - cosine(z, z_teacher)) averaged over positions + 0.1 * SmoothL1(z, z_teacher).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

if TYPE_CHECKING:  # the objective reads the output's fields: it needs no model code
    from .model import WaveGMSOutput


class WaveGMSLoss(nn.Module):
    """``(WaveGMSOutput, masks [B, 1, H, W] in {0, 1}) -> dict`` of scalar losses.

    Keys: ``total`` (what to backpropagate), ``latent`` and ``mask`` (each summed over the
    heads), ``align``. Nothing here synchronises with the host: log with ``.detach()``.
    """

    def __init__(self, cosine_weight: float = 0.9, smooth_l1_weight: float = 0.1) -> None:
        # Imported here: `import monai` loads all of MONAI (about 3 s).
        from monai.losses import DiceLoss

        super().__init__()
        self.cosine_weight = cosine_weight
        self.smooth_l1_weight = smooth_l1_weight
        # Probabilities in, per-sample Dice (batch=False) averaged over the batch.
        self.dice = DiceLoss(sigmoid=False, smooth_nr=1e-5, smooth_dr=1e-5, batch=False)

    def forward(self, output: WaveGMSOutput, masks: torch.Tensor) -> dict[str, torch.Tensor]:
        if output.mask_probs is None or output.mask_latent is None:
            raise ValueError("WaveGMSLoss needs the outputs of model(images, masks), with masks.")
        heads = len(output.mask_latents)
        predicted = torch.stack(output.mask_latents).float()  # [K, B, 4, h, w]
        # Equal-sized heads: the mean over all K heads times K is the sum of per-head means.
        latent = heads * F.mse_loss(predicted, output.mask_latent.float().expand_as(predicted))
        probs = output.mask_probs.float().flatten(0, 1)  # [K*B, 1, H, W]
        target = masks.float().repeat(heads, 1, 1, 1)
        mask = heads * self.dice(probs, target)
        z, teacher = output.latent.float(), output.teacher_latent.float()
        cosine = F.cosine_similarity(z, teacher, dim=1)  # per position, over the 4 channels
        align = self.cosine_weight * (1 - cosine).mean() + self.smooth_l1_weight * F.smooth_l1_loss(
            z, teacher
        )
        return {"total": latent + mask + align, "latent": latent, "mask": mask, "align": align}
