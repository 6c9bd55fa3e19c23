import numpy as np
import pytest
import pywt
import torch

from wavegms.wavelets import haar_pyramid


@pytest.mark.parametrize("shape", [(2, 3, 32, 32), (1, 3, 48, 64), (3, 1, 16, 40)])
def test_pyramid_matches_pywavelets_at_every_level_and_band(shape):
    images = torch.rand(*shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    pyramid = haar_pyramid(images, levels=3)
    # PyWavelets' reference: [cA3, (cH3, cV3, cD3), (cH2, ...), (cH1, ...)].
    reference = pywt.wavedec2(images.numpy(), "haar", level=3, axes=(-2, -1))
    channels = shape[1]
    for level in (1, 2, 3):
        bands = pyramid[level - 1].numpy() * 2**level  # undo the range normalisation
        assert bands.shape == (shape[0], 4 * channels, shape[2] >> level, shape[3] >> level)
        approx = pywt.wavedec2(images.numpy(), "haar", level=level, axes=(-2, -1))[0]
        np.testing.assert_allclose(bands[:, :channels], approx, atol=1e-12)
        for band, expected in enumerate(reference[4 - level], start=1):
            got = bands[:, band * channels : (band + 1) * channels]
            np.testing.assert_allclose(got, expected, atol=1e-12)


def test_levels_are_scaled_to_the_image_range():
    constant = torch.full((1, 3, 32, 32), 0.7)
    for level in haar_pyramid(constant):
        torch.testing.assert_close(level[:, :3], torch.full_like(level[:, :3], 0.7))
        assert level[:, 3:].abs().max() < 1e-6  # a constant image has no detail


def test_pyramid_is_differentiable_and_keeps_device_and_dtype():
    images = torch.rand(1, 3, 16, 16, requires_grad=True)
    pyramid = haar_pyramid(images)
    sum(level.sum() for level in pyramid).backward()
    assert images.grad is not None and torch.isfinite(images.grad).all()
    assert all(level.dtype == images.dtype and level.device == images.device for level in pyramid)


def test_pyramid_rejects_sizes_not_divisible_by_eight():
    with pytest.raises(ValueError, match="not divisible by 8"):
        haar_pyramid(torch.rand(1, 3, 36, 32))
