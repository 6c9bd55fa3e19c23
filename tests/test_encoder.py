"""The multi-resolution wavelet encoder: what each level sees, the latent Gaussian it outputs,
and how the model draws its latent from it (tiny widths: the behaviour, not the paper's size)."""

import pytest
import torch

from wavegms import WaveGMS
from wavegms.encoder import MultiResolutionEncoder

TINY = {"base_channels": 8, "channel_mult": (1, 2), "blocks_per_stage": 1}


@pytest.fixture
def encoder() -> MultiResolutionEncoder:
    torch.manual_seed(0)
    return MultiResolutionEncoder(**TINY)


def record_inputs_and_outputs(modules) -> list:  # noqa: ANN001
    seen = []
    for module in modules:
        module.register_forward_hook(lambda m, args, out: seen.append((args[0], out)))
    return seen


def test_every_level_keeps_its_resolution_and_meets_the_others_at_one_eighth(encoder):
    extractors = record_inputs_and_outputs(encoder.extractors)
    aggregator = record_inputs_and_outputs([encoder.aggregator])
    mu, logvar = encoder(torch.rand(2, 3, 32, 48))
    # Level l: the 12 Haar bands (LL, H, V, D x RGB) at H/2^l, through its own extractor.
    assert [(x.shape, y.shape) for x, y in extractors] == [
        ((2, 12, 32 // 2**level, 48 // 2**level),) * 2 for level in (1, 2, 3)
    ]
    ((features, moments),) = aggregator
    assert features.shape == (2, 36, 4, 6) and moments.shape == (2, 8, 4, 6)
    assert mu.shape == logvar.shape == (2, 4, 4, 6)
    torch.testing.assert_close(torch.cat([mu, logvar], dim=1), moments)


def test_each_level_is_scaled_to_the_images_range(encoder):
    """A constant image c reaches every extractor as LL = c and zero detail bands: level l's
    Haar coefficients are divided by 2^l (a constant's orthonormal LL_l is c * 2^l)."""
    extractors = record_inputs_and_outputs(encoder.extractors)
    encoder(torch.full((1, 3, 16, 16), 0.6))
    for bands, _ in extractors:
        torch.testing.assert_close(bands[:, :3], torch.full_like(bands[:, :3], 0.6))
        torch.testing.assert_close(bands[:, 3:], torch.zeros_like(bands[:, 3:]))


def test_the_log_variance_is_clamped_and_mu_comes_first(encoder):
    conv_out = encoder.aggregator.conv_out
    with torch.no_grad():
        conv_out.weight.zero_()
        conv_out.bias.copy_(torch.tensor([0.5, -0.5, 2.0, 0.0, 100.0, -100.0, 3.0, -3.0]))
    posterior = encoder.posterior(torch.rand(1, 3, 16, 16))
    assert posterior.mean[0, :, 0, 0].tolist() == [0.5, -0.5, 2.0, 0.0]
    assert posterior.logvar[0, :, 0, 0].tolist() == [20.0, -30.0, 3.0, -3.0]


def test_a_sample_is_mu_plus_sigma_times_standard_noise(encoder):
    posterior = encoder.posterior(torch.rand(2, 3, 16, 16))
    torch.manual_seed(7)
    sample = posterior.sample()
    torch.manual_seed(7)
    noise = torch.randn(posterior.mean.shape)
    torch.testing.assert_close(sample, posterior.mean + torch.exp(0.5 * posterior.logvar) * noise)
    assert torch.equal(posterior.mode(), posterior.mean)


def test_the_model_samples_its_latent_in_training_and_uses_mu_in_eval(tiny_vae):
    torch.manual_seed(0)
    model = WaveGMS(
        tiny_vae,
        encoder_base_channels=8,
        encoder_channel_mult=(1,),
        encoder_blocks_per_stage=1,
        lmm_base_channels=16,
    )
    images = torch.rand(2, 3, 16, 16)
    model.train()
    first, second = model(images), model(images)
    assert not torch.equal(first.latent, first.mu)  # a sample...
    assert not torch.equal(first.latent, second.latent)  # ...drawn anew each time
    torch.testing.assert_close(first.mu, second.mu)
    model.eval()
    out = model(images)
    assert torch.equal(out.latent, out.mu)
    torch.testing.assert_close(out.mu, first.mu)
    assert out.mask_probs is None and out.teacher_latent is None  # no masks: latents only
