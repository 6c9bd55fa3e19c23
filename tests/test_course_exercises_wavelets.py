"""Notebook 01's checks accept the method written right and reject plausible mistakes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from verdicts import assert_rejects, verdict

from wavegms.course.exercises import wavelets
from wavegms.wavelets import haar_pyramid

# ---- Exercise 1: one Haar step (E1) ------------------------------------------------------------


def corners(x):
    return x[..., 0::2, 0::2], x[..., 0::2, 1::2], x[..., 1::2, 0::2], x[..., 1::2, 1::2]


def haar_step(x):
    a, b, c, d = corners(x)
    ll, h = (a + b + c + d) / 2, (a + b - c - d) / 2
    v, diag = (a - b + c - d) / 2, (a - b - c + d) / 2
    return torch.cat([ll, h, v, diag], dim=1)


def swapped_h_v(x):
    a, b, c, d = corners(x)
    return torch.cat([a + b + c + d, a - b + c - d, a + b - c - d, a - b - c + d], 1) / 2


def block_means(x):
    return haar_step(x) / 2


def negative_d(x):
    ll, h, v, d = haar_step(x).chunk(4, 1)
    return torch.cat([ll, h, v, -d], 1)


def interleaved(x):  # LL, H, V, D of channel 0, then of channel 1, ...
    return torch.stack(haar_step(x).chunk(4, 1), dim=2).flatten(1, 2)


def four_tensors(x):
    return haar_step(x).chunk(4, 1)


def with_the_library(x):
    return haar_pyramid(x, levels=1)[0] * 2


def no_return(x):
    haar_step(x)


def stub(x):
    a, b, c, d = corners(x)
    ll = h = v = diag = ...
    ...  # TODO: your code here
    return torch.cat([ll, h, v, diag], dim=1)


def test_haar_step_accepts_the_formulas(capsys):
    assert verdict(capsys, wavelets.check_haar_step, haar_step)[0] == "correct"
    assert verdict(capsys, wavelets.check_haar_step, stub)[0] == "not done yet"


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (swapped_h_v, "H and V are swapped"),
        (block_means, "divides the sums by 2, not 4"),
        (negative_d, "the sign of D"),
        (interleaved, "largest difference"),
        (four_tensors, "should be a tensor"),
        (with_the_library, "calls `haar_pyramid`"),
        (no_return, "returned None"),
    ],
)
def test_haar_step_rejects(capsys, answer, reason):
    assert_rejects(capsys, wavelets.check_haar_step, answer, reason=reason)


# ---- Exercise 2: the pyramid (E2) --------------------------------------------------------------


def pyramid(images, levels=3):
    out, approx = [], images
    for level in range(1, levels + 1):
        bands = haar_step(approx)
        out.append(bands / 2**level)
        approx = bands[:, : images.shape[1]]  # LL, undivided
    return out


def undivided(images, levels=3):
    return [bands * 2**level for level, bands in enumerate(pyramid(images), 1)]


def divided_twice(images, levels=3):  # recursing on the divided LL
    out, approx = [], images
    for level in range(1, levels + 1):
        bands = haar_step(approx) / 2**level
        out.append(bands)
        approx = bands[:, : images.shape[1]]
    return out


def halved_each_level(images, levels=3):  # a plausible misreading: divide by 2l
    return [bands * 2**level / (2 * level) for level, bands in enumerate(pyramid(images), 1)]


def coarse_first(images, levels=3):
    return pyramid(images)[::-1]


def two_levels(images, levels=3):
    return pyramid(images)[:2]


def test_pyramid_accepts_the_recursion(capsys):
    assert verdict(capsys, wavelets.check_pyramid, pyramid)[0] == "correct"


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (undivided, "level 1 is not divided by 2^1"),
        (divided_twice, "level 2 is divided twice"),
        (halved_each_level, "level 3 is divided by 6"),
        (coarse_first, "level 1: shape"),
        (two_levels, "a list of 3 tensors"),
        (haar_pyramid, "calls `wavedec2`"),
    ],
)
def test_pyramid_rejects(capsys, answer, reason):
    assert_rejects(capsys, wavelets.check_pyramid, answer, reason=reason)


# ---- Exercise 3: where two patterns put their energy ------------------------------------------


def test_pattern_energy_accepts_tuples_lists_and_lowercase(capsys):
    for answer in (
        {"checkerboard": ("D", 1), "stripes": ("H", 1)},
        {"checkerboard": ["D", 1], "stripes": ["h", np.int64(1)]},
    ):
        assert verdict(capsys, wavelets.check_pattern_energy, answer)[0] == "correct"


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        ({"checkerboard": ("H", 1), "stripes": ("D", 1)}, "checkerboard and stripes"),
        ({"checkerboard": ("D", 2), "stripes": ("H", 1)}, "look again at checkerboard"),
        ({"checkerboard": ("D", 1), "stripes": ("V", 1)}, "look again at stripes"),
        ({"checkerboard": ("D", 1)}, "keys"),
        ({"checkerboard": "D1", "stripes": "H1"}, "a pair such as"),
        ({"checkerboard": ("LL", 1), "stripes": ("H", 1)}, "the detail bands are H, V and D"),
    ],
)
def test_pattern_energy_rejects(capsys, answer, reason):
    assert_rejects(capsys, wavelets.check_pattern_energy, answer, reason=reason)


# ---- Exercise 4: the encoder's pooling, concatenation and reparameterisation (E3) -------------


def encode(encoder, images, eps, pool=F.avg_pool2d, order=1, sigma=None, chunks=(0, 1)):
    levels = haar_pyramid(images)
    features = [extractor(bands) for extractor, bands in zip(encoder.extractors, levels)]
    pooled = [pool(f, 2 ** (2 - i)) if i < 2 else f for i, f in enumerate(features)]
    moments = encoder.aggregator(torch.cat(pooled[::order], dim=1))
    parts = moments.chunk(2, dim=1)
    mu, logvar = parts[chunks[0]], parts[chunks[1]].clamp(-30, 20)
    return mu + (sigma or (lambda lv: torch.exp(lv / 2)))(logvar) * eps


def test_encode_accepts_the_pieces(capsys):
    assert verdict(capsys, wavelets.check_encode, encode)[0] == "correct"


def bilinear(x, factor):
    return F.interpolate(x, scale_factor=1 / factor, mode="bilinear")


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (lambda e, x, eps: encode(e, x, eps, sigma=torch.exp), "sigma is exp(logvar / 2)"),
        (lambda e, x, eps: encode(e, x, eps, sigma=lambda lv: lv), "not logvar"),
        (lambda e, x, eps: encode(e, x, 0 * eps), "that is mu"),
        (lambda e, x, eps: encode(e, x, eps, pool=F.max_pool2d), "largest difference"),
        (lambda e, x, eps: encode(e, x, eps, pool=bilinear), "largest difference"),
        (lambda e, x, eps: encode(e, x, eps, order=-1), "largest difference"),
        (lambda e, x, eps: encode(e, x, eps, chunks=(1, 0)), "largest difference"),
        (lambda e, x, eps: e(x)[0] + torch.exp(e(x)[1] / 2) * eps, "cannot be run whole"),
        (lambda e, x, eps: e.posterior(x).sample(), "cannot be run whole"),
    ],
)
def test_encode_rejects(capsys, answer, reason):
    assert_rejects(capsys, wavelets.check_encode, answer, reason=reason)


# ---- Exercise 5: the smallest image side -----------------------------------------------------


def test_smallest_side_accepts_64_however_written(capsys):
    for answer in (64, 64.0, np.int64(64), torch.tensor(64)):
        assert verdict(capsys, wavelets.check_smallest_side, answer)[0] == "correct"


@pytest.mark.parametrize(
    ("answer", "reason"),
    [(60, "is rejected"), (61, "is rejected"), (56, "below 60"), (72, "not the smallest"),
     (128, "not the smallest")],
)  # fmt: skip
def test_smallest_side_rejects(capsys, answer, reason):
    assert_rejects(capsys, wavelets.check_smallest_side, answer, reason=reason)
