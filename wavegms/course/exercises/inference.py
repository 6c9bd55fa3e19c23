"""The checks of notebook 05 (inference): flip test-time augmentation, and what a model
predicts on images unlike any it was trained on.

Each ``check_*`` takes the student's answer (a value, or the function they wrote), computes
the reference itself (with the student's model, on images it draws) and prints one verdict
line. The model only needs ``predict(images [B, 3, S, S]) -> [B, 1, S, S]`` and
``config.image_size``, as :class:`wavegms.WaveGMS` has.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from . import as_floats, call, check, close


def _generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def tta_inputs(size: int) -> torch.Tensor:
    """Two images ``[2, 3, size, size]`` in [0, 1] that are far from mirror-symmetric: a
    dark blob on the left of a left-to-right ramp, and noise."""
    rows, cols = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    ramp = cols / (size - 1)
    blob = ((cols - size * 0.3) ** 2 + (rows - size * 0.5) ** 2 <= (size * 0.15) ** 2).float()
    first = (0.2 + 0.6 * ramp - 0.5 * blob).clamp(0, 1).expand(3, size, size)
    noise = torch.rand(3, size, size, generator=_generator(5))
    return torch.stack([first, noise])


def check_flip_tta(
    predict_flipped: Callable[..., Any],
    model: Any,  # noqa: ANN401 - a WaveGMS, or anything with its predict and config
    name: str = "Exercise 1",
) -> None:
    """Check ``predict_flipped(model, images)``: the mean of the plain prediction and the
    prediction of the left-right mirrored images, mirrored back (on :func:`tta_inputs`)."""
    images = tta_inputs(model.config.image_size)
    with torch.no_grad():
        plain = model.predict(images).cpu()
        expected = (plain + model.predict(images.flip(-1)).cpu().flip(-1)) / 2

    def test(function: Callable[..., Any]) -> bool | str:
        with torch.no_grad():
            mine = call(function, model, images.clone())
        mine = torch.as_tensor(mine.cpu() if isinstance(mine, torch.Tensor) else mine)
        found = close(mine, expected, rtol=1e-4, atol=1e-5)
        if found is True:
            return True
        if mine.shape == expected.shape and close(mine, plain, atol=1e-5) is True:
            return "this is the plain prediction: average it with the mirrored one"
        return f"on two test images: {found}"

    check(
        name,
        predict_flipped,
        test,
        success="Your flip averaging equals the reference on two asymmetric images.",
    )


def strange_images(size: int) -> torch.Tensor:
    """``[2, 3, size, size]`` in [0, 1]: a flat grey image and uniform noise (seeded)."""
    grey = torch.full((3, size, size), 0.5)
    return torch.stack([grey, torch.rand(3, size, size, generator=_generator(0))])


def check_strange_images(
    found: Any,  # noqa: ANN401
    model: Any,  # noqa: ANN401
    name: str = "Exercise 2",
) -> None:
    """Check the fraction of pixels ``model`` calls foreground (probability > 0.5) on each of
    :func:`strange_images`, recomputed here."""
    images = strange_images(model.config.image_size)
    with torch.no_grad():
        expected = (model.predict(images) > 0.5).float().mean((1, 2, 3)).cpu().tolist()
    pixel = 1 / images[0, 0].numel()

    def test(answer: Any) -> bool | str:  # noqa: ANN401
        values = as_floats(answer, "found")
        if len(values) != 2:
            return f"two fractions (the grey image, the noise), not {len(values)}"
        for label, mine, wanted in zip(("grey image", "noise"), values, expected):
            if abs(mine - wanted) > 2.5 * pixel:
                return f"{label}: {mine:.2%} of the pixels; recomputed: {wanted:.2%}"
        return True

    check(
        name,
        found,
        test,
        success=f"Foreground: {expected[0]:.1%} of the grey image, {expected[1]:.1%} of the noise.",
    )


__all__ = ["check_flip_tta", "check_strange_images", "strange_images", "tta_inputs"]
