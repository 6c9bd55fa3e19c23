"""The checks of notebook 00 (setup), one function per exercise, in the notebook's order.

Each prints one verdict line (see :func:`~wavegms.course.exercises.check`) and returns nothing,
so that the check cell shows the verdict once.
"""

from __future__ import annotations

import os
import weakref
from collections.abc import Callable
from typing import Any

import torch

from . import Wrong, check, close, describe

DEVICE_ENV = "WAVEGMS_DEVICE"
# A device type every PyTorch has, and no one computes on: it tells the two settings apart.
PROBE_DEVICE = "meta"


def which_device_setting_wins() -> str:
    """``"DEVICE"`` when an explicit ``get_device("cpu")`` ignores ``$WAVEGMS_DEVICE``, else
    ``"WAVEGMS_DEVICE"``: the experiment of Exercise 1, run with the variable set to ``meta``
    (restored afterwards)."""
    from ...utils.device import get_device

    saved = os.environ.get(DEVICE_ENV)
    os.environ[DEVICE_ENV] = PROBE_DEVICE
    try:
        explicit = get_device("cpu")
    finally:
        if saved is None:
            os.environ.pop(DEVICE_ENV)
        else:
            os.environ[DEVICE_ENV] = saved
    return "DEVICE" if explicit.type == "cpu" else DEVICE_ENV


def check_device_winner(answer: Any) -> None:  # noqa: ANN401
    """Exercise 1: ``answer`` is ``"DEVICE"`` or ``"WAVEGMS_DEVICE"``, whichever decides."""
    expected = which_device_setting_wins()

    def test(value: Any) -> bool | str:  # noqa: ANN401
        if not isinstance(value, str) or value.strip() not in ("DEVICE", DEVICE_ENV):
            return f'answer with the name, "DEVICE" or "{DEVICE_ENV}", not {describe(value)}'
        return value.strip() == expected or (
            f"look again: with {DEVICE_ENV}={PROBE_DEVICE}, what does get_device('cpu') return?"
        )

    check("Exercise 1", answer, test, success="An explicit device is never overridden.")


def count_flops(function: Callable[..., Any], *args: Any) -> int:  # noqa: ANN401
    """The floating-point operations of ``function(*args)`` as PyTorch counts them
    (``torch.utils.flop_counter``: convolutions and matrix products, 2 per multiply-add)."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        function(*args)
    return counter.get_total_flops()


# FLOPs depend on the architecture and the size, not on the weights: count once per model.
_SHARES: weakref.WeakKeyDictionary[torch.nn.Module, dict[int, float]] = weakref.WeakKeyDictionary()


def decoder_share(model: torch.nn.Module, image_size: int) -> float:
    """The share of one image's ``model.predict`` FLOPs that TAESD's decoder
    (``model.decode``) does, at ``image_size`` pixels: the reference of Exercise 2."""
    shares = _SHARES.setdefault(model, {})
    if image_size not in shares:
        shares[image_size] = _decoder_share(model, image_size)
    return shares[image_size]


def _decoder_share(model: torch.nn.Module, image_size: int) -> float:
    image = torch.rand(1, 3, image_size, image_size, device=model.device)
    latent = torch.zeros(1, 4, image_size // 8, image_size // 8, device=model.device)
    with torch.no_grad():
        return count_flops(model.decode, latent) / count_flops(model.predict, image)


def check_decoder_share(answer: Any, model: torch.nn.Module, image_size: int) -> None:  # noqa: ANN401
    """Exercise 2: ``answer`` is the decoder's share of the FLOPs of ``model.predict`` on one
    image of ``image_size`` pixels, a number in [0, 1]."""
    expected = decoder_share(model, image_size)
    decoder_weights = sum(p.numel() for p in model.tiny_vae.decoder.parameters())
    weights = decoder_weights + sum(p.numel() for p in model.parameters())

    def test(value: Any) -> bool | str:  # noqa: ANN401
        share = float(value)
        if share > 1:
            raise Wrong(f"{share:.3g} is more than 1: a share is a fraction (0.5 for half).")
        # 1%: counting TAESD's own decoder (`vae.decode`, RGB out) instead of `model.decode`
        # (one channel out) changes only its last convolution.
        return close(share, expected, rtol=0.01)

    check(
        "Exercise 2",
        answer,
        test,
        success=lambda value: (
            f"TAESD's decoder does {float(value):.0%} of the work on one image, with "
            f"{decoder_weights / weights:.0%} of the weights that run."
        ),
    )


__all__ = ["check_decoder_share", "check_device_winner", "decoder_share", "count_flops"]
