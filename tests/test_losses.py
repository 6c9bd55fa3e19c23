import pytest
import torch
import torch.nn.functional as F

from wavegms import WaveGMSOutput
from wavegms.losses import WaveGMSLoss


def make_output(heads, target, probs, z, teacher):
    return WaveGMSOutput(
        mask_latents=tuple(heads),
        latent=z,
        mu=z,
        logvar=torch.zeros_like(z),
        teacher_latent=teacher,
        mask_latent=target,
        mask_probs=probs,
    )


def test_terms_follow_the_spec_definitions():
    g = torch.Generator().manual_seed(0)
    target = torch.randn(2, 4, 4, 4, generator=g)
    heads = [torch.randn(2, 4, 4, 4, generator=g) for _ in range(3)]
    masks = (torch.rand(2, 1, 32, 32, generator=g) > 0.5).float()
    probs = torch.rand(3, 2, 1, 32, 32, generator=g)
    z, teacher = torch.randn(2, 4, 4, 4, generator=g), torch.randn(2, 4, 4, 4, generator=g)
    losses = WaveGMSLoss()(make_output(heads, target, probs, z, teacher), masks)

    latent = sum(F.mse_loss(h, target) for h in heads)
    # Soft Dice per sample, smooth 1e-5, averaged over the batch, summed over heads.
    inter = (probs * masks).sum(dim=(2, 3, 4))
    sizes = probs.sum(dim=(2, 3, 4)) + masks.sum(dim=(1, 2, 3))
    dice = (1 - (2 * inter + 1e-5) / (sizes + 1e-5)).mean(dim=1).sum()
    cosine = F.cosine_similarity(z, teacher, dim=1)
    align = 0.9 * (1 - cosine).mean() + 0.1 * F.smooth_l1_loss(z, teacher)

    torch.testing.assert_close(losses["latent"], latent)
    torch.testing.assert_close(losses["mask"], dice)
    torch.testing.assert_close(losses["align"], align)
    torch.testing.assert_close(losses["total"], latent + dice + align)


def test_perfect_prediction_costs_nothing():
    masks = torch.zeros(2, 1, 16, 16)
    masks[:, :, 4:12, 4:12] = 1
    target = torch.randn(2, 4, 2, 2)
    z = torch.randn(2, 4, 2, 2)
    out = make_output([target] * 3, target, masks.expand(3, -1, -1, -1, -1), z, z)
    losses = WaveGMSLoss()(out, masks)
    assert losses["total"].item() == pytest.approx(0.0, abs=1e-5)


def test_loss_needs_the_masked_forward():
    z = torch.zeros(1, 4, 2, 2)
    with pytest.raises(ValueError, match="with masks"):
        WaveGMSLoss()(WaveGMSOutput(mask_latents=(z,), latent=z, mu=z, logvar=z), z)
