"""The checks of notebook 01 (the Haar wavelet pyramid), one function per exercise, in the
notebook's order.

A function the student writes is run on fresh inputs drawn here and compared with the library
(:func:`wavegms.wavelets.haar_pyramid`, :class:`wavegms.encoder.MultiResolutionEncoder`). Each
check prints one verdict line and returns nothing, so that the check cell shows it once.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import torch

from ...encoder import MultiResolutionEncoder
from ...wavelets import BANDS, haar_pyramid
from . import (
    Wrong,
    as_tensor,
    call,
    check,
    close,
    describe,
    forbid_calls,
    matches,
    which_mistake,
)

LEVELS = 3
# The library's transforms: the exercises ask for them, so an answer may not call them.
LIBRARY = ("haar_pyramid", "wavedec2", "wavedec", "dwt2", "dwtn")
# Fresh inputs: a seed of their own (not the notebook's), odd batch and channel-distinct sizes,
# so that a transposed or reshaped answer cannot match by accident.
SEED = 1234


def _generator() -> torch.Generator:
    return torch.Generator().manual_seed(SEED)


# ---- Exercise 1: one Haar step (E1) -----------------------------------------------------------


def haar_step_reference(x: torch.Tensor) -> torch.Tensor:
    """One orthonormal Haar step (E1), ``[B, C, H, W] -> [B, 4C, H/2, W/2]``: LL, H, V, D
    (C channels each), not divided by anything (``haar_pyramid``'s level 1 times 2)."""
    return haar_pyramid(x, levels=1)[0] * 2


def check_haar_step(answer: Callable[[torch.Tensor], torch.Tensor]) -> None:
    """Exercise 1: ``answer(x)`` is one orthonormal Haar step of ``x [B, C, H, W]``."""
    x = torch.rand(3, 2, 6, 10, generator=_generator())
    expected = haar_step_reference(x)
    ll, h, v, d = expected.chunk(4, dim=1)
    variants = {
        "H and V are swapped: H is top minus bottom (a + b - c - d).": torch.cat([ll, v, h, d], 1),
        "that is the block average: the orthonormal step divides the sums by 2, not 4.": (
            expected / 2
        ),
        "the sign of D: it is a - b - c + d.": torch.cat([ll, h, v, -d], 1),
    }

    def test(function: Callable) -> bool | str:
        forbid_calls(function, LIBRARY, "write the four bands from a, b, c, d yourself")
        value = as_tensor(call(function, x), "haar_step(x)")
        if value.shape != expected.shape:
            return (
                f"haar_step of a {tuple(x.shape)} batch gave {tuple(value.shape)}, expected "
                f"{tuple(expected.shape)}: concatenate LL, H, V, D along the channels (dim 1)"
            )
        return matches(value, expected, variants)

    check(
        "Exercise 1",
        answer,
        test,
        success="Your step equals ptwt's single-level Haar transform on fresh images.",
    )


# ---- Exercise 2: the pyramid (E2) -------------------------------------------------------------


def check_pyramid(answer: Callable[[torch.Tensor], list[torch.Tensor]]) -> None:
    """Exercise 2: ``answer(images)`` is :func:`haar_pyramid`'s three levels, each divided by
    2^l (it may use the student's ``haar_step`` of Exercise 1)."""
    images = torch.rand(3, 3, 16, 24, generator=_generator())
    expected = haar_pyramid(images, LEVELS)

    def test(function: Callable) -> bool | str:
        forbid_calls(function, LIBRARY, "repeat your haar_step on LL instead")
        levels = call(function, images)
        if not isinstance(levels, list | tuple) or len(levels) != LEVELS:
            return f"expected a list of {LEVELS} tensors (levels 1, 2, 3), got {describe(levels)}"
        for level, (value, reference) in enumerate(zip(levels, expected), 1):
            value = as_tensor(value, f"level {level}")
            raw = reference * 2**level  # the orthonormal coefficients
            mistakes = {  # what the level would be divided by, for three plausible slips
                f"level {level} is not divided by 2^{level}.": 1,
                f"level {level} is divided twice: recurse on the undivided LL.": (
                    2 ** (level * (level + 1) // 2)
                ),
                f"level {level} is divided by {2 * level}, not by 2^{level}.": 2 * level,
            }
            hint = which_mistake(
                value,
                {h: raw / by for h, by in mistakes.items() if by != 2**level},
            )
            if hint:
                return hint
            verdict = close(value, reference, atol=1e-5)
            if verdict is not True:
                step = " (it uses haar_step: is Exercise 1 right?)" if level == 1 else ""
                return f"level {level}: {verdict}{step}"
        return True

    check(
        "Exercise 2",
        answer,
        test,
        success="Your pyramid equals wavegms.wavelets.haar_pyramid on fresh images.",
    )


# ---- Exercise 3: where patterns put their energy ----------------------------------------------


def strongest_detail(pattern: torch.Tensor) -> tuple[str, int]:
    """``(band, level)`` of the detail band of ``pattern [H, W]`` with the most energy, on the
    orthonormal scale (each level times 2^l)."""
    energies = {}
    for level, bands in enumerate(haar_pyramid(pattern.expand(1, 1, -1, -1), LEVELS), 1):
        raw = bands[0] * 2**level  # LL, H, V, D of the one channel
        for index, band in enumerate(BANDS[1:], 1):
            energies[(band, level)] = raw[index].square().sum().item()
    return max(energies, key=energies.get)


def patterns(side: int = 32) -> dict[str, torch.Tensor]:
    """The two patterns of Exercise 3, ``[side, side]`` in {0, 1}."""
    rows, cols = torch.arange(side)[:, None], torch.arange(side)[None, :]
    return {
        "checkerboard": ((rows + cols) % 2).float(),
        "stripes": (rows % 2 == 0).float().expand(side, side),
    }


def _band_level(value: Any) -> tuple[str, int]:  # noqa: ANN401
    if not isinstance(value, list | tuple) or len(value) != 2:
        raise Wrong(f'give each pattern a pair such as ("V", 2), not {describe(value)}')
    band, level = value
    if not isinstance(band, str) or band.upper() not in BANDS[1:]:
        raise Wrong(f"{band!r}: the detail bands are H, V and D")
    try:
        return band.upper(), int(level)
    except (TypeError, ValueError):
        raise Wrong(f"{level!r}: a level is a number, 1, 2 or 3") from None


def check_pattern_energy(answer: Any) -> None:  # noqa: ANN401
    """Exercise 3: ``answer`` maps "checkerboard" and "stripes" to the ``(band, level)`` of
    the detail band holding most of their energy (tuples or lists)."""
    expected = {name: strongest_detail(pattern) for name, pattern in patterns().items()}

    def test(value: Any) -> bool | str:  # noqa: ANN401
        if not isinstance(value, dict) or set(value) != set(expected):
            return f"expected a dict with keys {sorted(expected)}, got {describe(value)}"
        wrong = [name for name in expected if _band_level(value[name]) != expected[name]]
        return not wrong or (
            f"look again at {' and '.join(wrong)}: which of H, V, D, and at which level?"
        )

    check("Exercise 3", answer, test)


# ---- Exercise 4: the encoder's pooling, concatenation and reparameterisation (E3) -------------


class EncoderParts(MultiResolutionEncoder):
    """A :class:`MultiResolutionEncoder` whose parts (``extractors``, ``aggregator``) work but
    which cannot be run whole: what Exercise 4's function receives."""

    def posterior(self, images: torch.Tensor) -> None:
        raise Wrong(
            "the exercise's encoder cannot be run whole: pool, concatenate and sample "
            "from its extractors' and aggregator's outputs yourself"
        )

    def forward(self, images: torch.Tensor) -> None:
        self.posterior(images)


@functools.cache
def encode_case() -> tuple[EncoderParts, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Exercise 4's fresh inputs and their reference, drawn once: ``(encoder, images, eps, mu,
    logvar)``, a seeded untrained encoder, images ``[2, 3, 16, 24]`` and noise ``[2, 4, 2, 3]``
    (small: the check must be quick on a busy CPU)."""
    with torch.random.fork_rng(devices=[]):  # the notebook's random stream stays as it was
        torch.manual_seed(SEED)
        encoder = EncoderParts().eval()
    generator = _generator()
    images = torch.rand(2, 3, 16, 24, generator=generator)
    eps = torch.randn(2, 4, 2, 3, generator=generator)
    with torch.no_grad():
        posterior = MultiResolutionEncoder.posterior(encoder, images)
    return encoder, images, eps, posterior.mean, posterior.logvar


def check_encode(answer: Callable[..., torch.Tensor]) -> None:
    """Exercise 4: ``answer(encoder, images, eps)`` is the encoder's reparameterised latent
    ``z [B, 4, H/8, W/8]`` (E3) for the noise ``eps``, on a fresh encoder and fresh images."""
    encoder, images, eps, mu, logvar = encode_case()
    expected = mu + torch.exp(logvar / 2) * eps
    variants = {
        "that is mu: add the noise, sigma * eps.": mu,
        "sigma is exp(logvar / 2), the square root of the variance exp(logvar).": (
            mu + logvar.exp() * eps
        ),
        "z = mu + sigma * eps, with sigma = exp(logvar / 2), not logvar.": mu + logvar * eps,
    }

    def test(function: Callable) -> bool | str:
        with torch.no_grad():
            value = as_tensor(call(function, encoder, images, eps), "z")
        return matches(value, expected, variants, shape_hint=" for z")

    check(
        "Exercise 4",
        answer,
        test,
        success="Your encoder gives the library's z on a fresh encoder and fresh images.",
    )


# ---- Exercise 5: the image size -------------------------------------------------------------


def smallest_side(start: int = 60, levels: int = LEVELS) -> int:
    """The smallest side >= ``start`` that :func:`haar_pyramid` accepts."""
    side = start
    while True:
        try:
            haar_pyramid(torch.zeros(1, 1, side, side), levels)
            return side
        except ValueError:
            side += 1


def check_smallest_side(answer: Any) -> None:  # noqa: ANN401
    """Exercise 5: ``answer`` is the smallest side of at least 60 px that the pyramid accepts."""
    expected = smallest_side()

    def test(value: Any) -> bool | str:  # noqa: ANN401
        side = float(value)
        if side == expected:
            return True
        if side < 60:
            return f"{value} is below 60: the question asks for at least 60"
        return f"{value} is not the smallest" if side > expected else f"{value} is rejected"

    check("Exercise 5", answer, test, success=f"{expected} = 8 x {expected // 8}.")


__all__ = [
    "check_encode",
    "check_haar_step",
    "check_pattern_energy",
    "check_pyramid",
    "check_smallest_side",
    "encode_case",
    "haar_step_reference",
    "patterns",
    "smallest_side",
    "strongest_detail",
]
