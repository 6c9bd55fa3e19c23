"""The checks of notebook 02 (TAESD latents), one function per exercise, in the notebook's order.

A function the student writes is run on fresh masks and latents drawn here and compared with
:class:`wavegms.model.WaveGMS` (``encode_targets``, ``decode``). Each check prints
one verdict line and returns nothing, so that the check cell shows it once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from . import as_tensor, call, check, close, describe, matches

SEED = 4321  # fresh inputs: not the notebook's seed
SIDE = 32  # fresh masks' side in pixels (4 x 4 latents): small, so the checks are quick


def random_masks(count: int, side: int = SIDE, seed: int = SEED) -> torch.Tensor:
    """``[count, 1, side, side]`` masks in {0, 1}: ellipses of random centre, radii and
    orientation."""
    generator = torch.Generator().manual_seed(seed)
    centre = torch.rand(count, 2, 1, 1, generator=generator) - 0.5  # (y, x) in [-0.5, 0.5]
    radii = 0.15 + 0.4 * torch.rand(count, 2, 1, 1, generator=generator)
    angle = torch.pi * torch.rand(count, 1, 1, generator=generator)
    grid = torch.linspace(-1, 1, side)
    y, x = torch.meshgrid(grid, grid, indexing="ij")
    dy, dx = y - centre[:, 0], x - centre[:, 1]  # [count, side, side]
    u = dx * angle.cos() + dy * angle.sin()
    v = dy * angle.cos() - dx * angle.sin()
    inside = (u / radii[:, 1]) ** 2 + (v / radii[:, 0]) ** 2 <= 1
    return inside.float()[:, None]


def _model_device(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


# ---- Exercise 1: the mask latent (E4) -------------------------------------------------------


def check_mask_latent(answer: Callable[..., torch.Tensor], model: torch.nn.Module) -> None:
    """Exercise 1: ``answer(vae, masks)`` is the mask latent ``E(2m - 1)`` of masks
    ``[B, 1, H, W]``, as ``model.encode_targets`` makes it, on fresh masks."""
    device = _model_device(model)
    masks = random_masks(3).to(device)
    vae = model.tiny_vae
    with torch.no_grad():
        _, expected = model.encode_targets(torch.zeros_like(masks).expand(-1, 3, -1, -1), masks)
        masks3 = masks.expand(-1, 3, -1, -1)
        variants = {
            "TAESD takes pixels in [-1, 1]: encode 2m - 1, not m.": vae.encode(masks3).latents,
            "foreground is +1 and background -1: 2m - 1, not 1 - 2m.": vae.encode(
                1 - 2 * masks3
            ).latents,
        }

    def test(function: Callable) -> bool | str:
        with torch.no_grad():
            value = as_tensor(call(function, vae, masks), "the mask latent")
        return matches(value, expected, variants, atol=1e-4)

    check(
        "Exercise 1",
        answer,
        test,
        success="Your mask latents equal WaveGMS.encode_targets' on fresh masks.",
    )


# ---- Exercise 2: decoding a mask latent (E5) ------------------------------------------------


def decode_inputs(model: torch.nn.Module) -> torch.Tensor:
    """Fresh latents ``[4, 4, 4, 4]`` to decode: mask latents of fresh masks, two of them
    pushed far out so that the decoder leaves [-1, 1] and the clamp matters."""
    device = _model_device(model)
    masks = random_masks(4, seed=SEED + 1).to(device)
    with torch.no_grad():
        _, latents = model.encode_targets(torch.zeros_like(masks).expand(-1, 3, -1, -1), masks)
    generator = torch.Generator().manual_seed(SEED + 2)
    noise = torch.randn(latents.shape, generator=generator).to(device)
    scale = torch.tensor([0.0, 0.5, 3.0, 6.0], device=device).view(4, 1, 1, 1)
    return latents + scale * noise


def check_decode(answer: Callable[..., torch.Tensor], model: torch.nn.Module) -> None:
    """Exercise 2: ``answer(vae, latents)`` is ``clamp((mean_c D(z) + 1) / 2, 0, 1)``,
    ``[B, 1, H, W]``, as ``model.decode`` computes it, on fresh latents."""
    latents = decode_inputs(model)
    vae = model.tiny_vae
    with torch.no_grad():
        expected = model.decode(latents)
        rgb = vae.decode(latents).sample
    variants = {
        "clamp the probabilities to [0, 1]: far from the masks the decoder leaves [-1, 1].": (
            (rgb.mean(1, keepdim=True) + 1) / 2
        ),
        "average the 3 decoded channels (mean over dim 1), not one of them.": (
            ((rgb[:, :1] + 1) / 2).clamp(0, 1)
        ),
        "map [-1, 1] to [0, 1] with (y + 1) / 2.": rgb.mean(1, keepdim=True).clamp(0, 1),
    }

    def test(function: Callable) -> bool | str:
        with torch.no_grad():
            value = as_tensor(call(function, vae, latents), "the probabilities")
        if value.shape == expected.shape and value.unique().numel() <= 2:
            return "return probabilities in [0, 1], not a thresholded mask"
        hint = " (keep the channel axis: mean(dim=1, keepdim=True))" if value.ndim == 3 else ""
        return matches(value, expected, variants, atol=1e-4, shape_hint=hint)

    check(
        "Exercise 2",
        answer,
        test,
        success="Your decode equals WaveGMS.decode on fresh latents.",
    )


# ---- Exercise 3: the latents of constant masks ----------------------------------------------


def constant_latents(model: torch.nn.Module, side: int = 64) -> dict[str, list[float]]:
    """The per-channel means of the mask latents of an all-background and an all-foreground
    mask of ``side`` pixels (through ``model.encode_targets``)."""
    device = _model_device(model)
    masks = torch.tensor([0.0, 1.0], device=device).view(2, 1, 1, 1).expand(2, 1, side, side)
    with torch.no_grad():
        _, latents = model.encode_targets(torch.zeros(2, 3, side, side, device=device), masks)
    means = latents.mean((2, 3)).cpu()
    return {"background": means[0].tolist(), "foreground": means[1].tolist()}


def check_constant_latents(answer: Any, model: torch.nn.Module) -> None:  # noqa: ANN401
    """Exercise 3: ``answer`` is ``{"background": 4 means, "foreground": 4 means}`` (lists,
    tuples, arrays or tensors) of the latents of constant masks at 64 px."""
    expected = constant_latents(model)

    def test(value: Any) -> bool | str:  # noqa: ANN401
        if not isinstance(value, dict) or set(value) != set(expected):
            return f"expected a dict with keys {sorted(expected)}, got {describe(value)}"
        if close(value["background"], expected["foreground"], atol=1e-3) is True:
            return "background and foreground are swapped"
        return close(
            {k: torch.as_tensor(v).flatten() for k, v in value.items()},
            {k: torch.tensor(v) for k, v in expected.items()},
            atol=1e-3,
        )

    check("Exercise 3", answer, test)


# ---- Exercise 4: interpolating between two mask latents --------------------------------------

STEPS = (0.0, 0.25, 0.5, 0.75, 1.0)


def interpolation(model: torch.nn.Module, z0: torch.Tensor, z1: torch.Tensor) -> torch.Tensor:
    """The decoded probabilities ``[5, 1, H, W]`` of ``(1 - t) z0 + t z1`` for t in
    :data:`STEPS`, for two mask latents ``[4, h, w]``."""
    steps = torch.tensor(STEPS, device=z0.device).view(-1, 1, 1, 1)
    with torch.no_grad():
        return model.decode((1 - steps) * z0 + steps * z1)


def check_interpolation(
    answer: Any,  # noqa: ANN401
    model: torch.nn.Module,
    z0: torch.Tensor,
    z1: torch.Tensor,
) -> None:
    """Exercise 4: ``answer`` is :func:`interpolation` of ``z0`` and ``z1``: all five frames
    are compared, not only the ends."""
    expected = interpolation(model, z0, z1).cpu()
    steps = torch.tensor(STEPS).view(-1, 1, 1, 1)
    variants = {  # the first and last frames are the decoded ends
        "that cross-fades the decoded ends in pixel space: blend the latents, then decode.": (
            (1 - steps) * expected[0] + steps * expected[-1]
        ),
        "the frames run from z1 to z0: t = 0 is the first image's latent.": expected.flip(0),
    }

    def test(value: Any) -> bool | str:  # noqa: ANN401
        value = as_tensor(value, "blended")
        return matches(value, expected, variants, atol=1e-3, shape_hint=" (5 frames)")

    check("Exercise 4", answer, test, success="The widget below lets you move t yourself.")


__all__ = [
    "STEPS",
    "check_constant_latents",
    "check_decode",
    "check_interpolation",
    "check_mask_latent",
    "constant_latents",
    "decode_inputs",
    "interpolation",
    "random_masks",
]
