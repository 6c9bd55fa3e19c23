"""The checks of notebook 03 (training): the LMM's attention, the objective, one optimisation
step, the learning-rate schedule, sampled predictions and the narrow LMM.

Each ``check_*`` takes the student's answer (a value, or the function they wrote), computes
the reference itself (from the library, on inputs it draws) and prints one verdict line.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from ...lmm import LatentMappingModel, SpatialSelfAttention
from ...losses import WaveGMSLoss
from ...model import WaveGMSOutput
from . import as_floats, call, check, close, forbid_calls, forbidden


def _generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _randomised(module: nn.Module, seed: int) -> nn.Module:
    """``module`` with every parameter drawn at random (biases and norms included, so that an
    answer that skips one of them shows)."""
    generator = _generator(seed)
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.copy_(0.3 * torch.randn(parameter.shape, generator=generator) + 0.1)
    return module


# ---- Exercise: the LMM's spatial self-attention ----------------------------------------------


def check_attention(attention: Callable[..., Any], name: str = "Exercise 1") -> None:
    """Check ``attention(x, norm, q, k, v, proj)`` against :class:`SpatialSelfAttention`.

    The layer has random weights and ``x`` is ``[2, 32, 5, 7]``: a rectangular latent, so that
    a transpose of height and width shows.
    """
    layer = _randomised(SpatialSelfAttention(32), seed=31).eval()
    x = torch.randn(2, 32, 5, 7, generator=_generator(32))
    with torch.no_grad():
        expected = layer(x)

    def test(function: Callable[..., Any]) -> bool | str:
        with torch.no_grad():
            mine = call(function, x, layer.norm, layer.q, layer.k, layer.v, layer.proj)
        found = close(mine, expected, rtol=1e-4, atol=1e-5)
        if found is True:
            return True
        without_residual = close(mine, expected - x, rtol=1e-4, atol=1e-5) is True
        hint = " (add the input x back: the block is residual)" if without_residual else ""
        return f"on a random layer and x [2, 32, 5, 7]: {found}{hint}"

    check(
        name,
        attention,
        test,
        success="Your attention equals wavegms.lmm.SpatialSelfAttention on a random layer.",
    )


# ---- Exercise: the objective -----------------------------------------------------------------

LOSS_TERMS = ("latent", "mask", "align", "total")


def objective_inputs(seed: int = 6) -> tuple[WaveGMSOutput, torch.Tensor]:
    """A random forward-pass output and masks for the objective: 3 heads, 3 images of 32 px,
    one of them with an empty mask; probabilities in (0, 1)."""
    generator = _generator(seed)
    batch, size, latent = 3, 32, (3, 4, 4, 4)

    def randn(shape: tuple[int, ...]) -> torch.Tensor:
        return torch.randn(shape, generator=generator)

    rows = torch.arange(size)[:, None]
    disk = ((rows - 14) ** 2 + (rows.T - 17) ** 2 <= 81).float()[None]  # [1, H, W]
    square = torch.zeros(1, size, size)
    square[:, 4:10, 20:28] = 1
    masks = torch.stack([disk, square, torch.zeros(1, size, size)])  # the last one empty
    output = WaveGMSOutput(
        mask_latents=tuple(randn(latent) for _ in range(3)),
        latent=randn(latent),
        mu=randn(latent),
        logvar=torch.zeros(latent),
        teacher_latent=randn(latent),
        mask_latent=randn(latent),
        mask_probs=torch.rand((3, batch, 1, size, size), generator=generator),
    )
    return output, masks


def check_objective(objective: Callable[..., Any], name: str = "Exercise 2") -> None:
    """Check ``objective(output, masks)`` term by term against :class:`WaveGMSLoss`, on a
    random output (:func:`objective_inputs`). Calling ``WaveGMSLoss`` is refused."""
    output, masks = objective_inputs()
    expected = WaveGMSLoss()(output, masks)

    def test(function: Callable[..., Any]) -> bool | str:
        refusal = "write the three terms yourself."
        with forbidden(WaveGMSLoss, "forward", refusal), torch.no_grad():
            mine = call(function, output, masks)
        if not isinstance(mine, dict):
            return f"return a dict with keys {list(LOSS_TERMS)}, not {type(mine).__name__}"
        missing = [key for key in LOSS_TERMS if key not in mine]
        if missing:
            return f"your dict lacks {', '.join(map(repr, missing))}"
        for key in LOSS_TERMS:
            found = close(mine[key], expected[key], rtol=1e-4, atol=1e-6)
            if found is not True:
                return f"on random inputs (3 images, one with an empty mask), {key}: {found}"
        return True

    check(name, objective, test, success="Your objective equals WaveGMSLoss term by term.")


# ---- Exercise: one optimisation step ---------------------------------------------------------


def check_step(
    step: Callable[..., Any],
    model: nn.Module,
    images: torch.Tensor,
    masks: torch.Tensor,
    *,
    lr: float,
    weight_decay: float,
    name: str = "Exercise 3",
) -> None:
    """Check ``step(model, optimizer, images, masks)`` against the engine's step.

    Both run on copies of ``model`` (``WaveGMS``) that hold stale gradients, as a model does
    after the previous batch, with a fresh AdamW and the same random state; the weights after
    the update and the returned loss terms must agree. Calling the engine's step is refused.
    """
    from ...engine.train import optimisation_step

    def after(run: Callable[[nn.Module, torch.optim.Optimizer], Any]) -> tuple[Any, torch.Tensor]:
        net = copy.deepcopy(model).train()
        generator = _generator(4)
        for parameter in net.parameters():  # the gradients of an earlier batch
            parameter.grad = torch.randn(parameter.shape, generator=generator).to(parameter)
        optimizer = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=weight_decay)
        with torch.random.fork_rng(devices=[]):  # the same z for both; the notebook's RNG kept
            torch.manual_seed(0)
            losses = run(net, optimizer)
        return losses, torch.cat([p.detach().flatten() for p in net.parameters()])

    expected, weights = after(
        lambda net, opt: optimisation_step(net, WaveGMSLoss(), opt, images, masks)
    )

    def test(function: Callable[..., Any]) -> bool | str:
        forbid_calls(function, ["optimisation_step"], "write the step yourself.")
        mine, mine_weights = after(lambda net, opt: call(function, net, opt, images, masks))
        found = close(mine_weights, weights, rtol=1e-4, atol=1e-6)
        if found is not True:
            return (
                f"the weights after your step differ from the engine's ({found}). The check's "
                "model holds the gradients of an earlier batch, as in training."
            )
        if not isinstance(mine, dict):
            return f"return the dict of loss terms, not {type(mine).__name__}"
        found = close({key: mine.get(key) for key in expected}, expected, rtol=1e-4)
        return True if found is True else f"the returned loss terms differ: {found}"

    check(
        name,
        step,
        test,
        success="After your step the weights equal those after the engine's step.",
    )


# ---- Exercise: warm-up and cosine ------------------------------------------------------------

# (base lr, warm-up epochs, epochs): a short run, a long one, a warm-up as long as the run
# (capped at epochs - 1), and none.
SCHEDULES = ((3e-3, 1, 5), (2e-3, 5, 12), (1e-3, 4, 4), (5e-4, 0, 3))


def check_schedule(lr_at: Callable[..., Any], name: str = "Exercise 4") -> None:
    """Check ``lr_at(epoch, base_lr, warmup_epochs, epochs)`` at every epoch of the
    :data:`SCHEDULES` against :func:`wavegms.engine.schedule.lr_factor`."""
    from ...engine.schedule import lr_factor

    def test(function: Callable[..., Any]) -> bool | str:
        for base_lr, warmup, epochs in SCHEDULES:
            for epoch in range(epochs):
                mine = call(function, epoch, base_lr, warmup, epochs)
                (value,) = as_floats(mine, "the learning rate")
                expected = base_lr * lr_factor(epoch, warmup, epochs)
                if not math.isclose(value, expected, rel_tol=1e-6, abs_tol=1e-12):
                    return (
                        f"epoch {epoch} of {epochs} ({warmup} warm-up, base lr {base_lr:g}): "
                        f"{value:.6g}, expected {expected:.6g}"
                    )
        return True

    check(name, lr_at, test, success="Your schedule equals wavegms.engine.schedule.")


# ---- Exercise: predictions from sampled latents ----------------------------------------------


@torch.no_grad()
def sampled_labels(model: nn.Module, images: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """The masks (probability > 0.5) predicted from ``z = mu + sigma * eps`` for each ``eps``
    in ``noise [N, B, 4, h, w]``: bool ``[N, B, 1, H, W]``."""
    mu, logvar = model.encoder(images)
    sigma = torch.exp(0.5 * logvar)
    return torch.stack([model.decode(model.lmm(mu + sigma * eps)[-1]) > 0.5 for eps in noise])


def check_sampling(
    disagree: Any,  # noqa: ANN401
    model: nn.Module,
    images: torch.Tensor,
    noise: torch.Tensor,
    name: str = "Exercise 5",
) -> None:
    """Check the fraction of pixels whose label is not the same in all samples of ``noise``,
    recomputed here (a pixel or two of numerical difference is tolerated)."""
    labels = sampled_labels(model, images, noise)
    expected = (labels != labels[0]).any(0).float().mean().item()
    pixel = 1 / labels[0].numel()

    def test(answer: Any) -> bool | str:  # noqa: ANN401
        (value,) = as_floats(answer, "disagree")
        if abs(value - expected) <= 2.5 * pixel:
            return True
        return f"{value:.4%} of the pixels; recomputed from the same noise: {expected:.4%}"

    check(
        name,
        disagree,
        test,
        success=f"{expected:.2%} of the pixels change label between samples.",
    )


# ---- Exercise: the narrow LMM ----------------------------------------------------------------


def check_narrow_share(share: Any, name: str = "Exercise 6") -> None:  # noqa: ANN401
    """Check the parameter share of the LMM at base width 16 against the paper's (32)."""

    def count(module: nn.Module) -> int:
        return sum(p.numel() for p in module.parameters())

    expected = count(LatentMappingModel(base_channels=16)) / count(LatentMappingModel())

    def test(answer: Any) -> bool | str:  # noqa: ANN401
        (value,) = as_floats(answer, "share")
        found = close(value, expected, rtol=1e-3)
        return True if found is True else f"{found} (parameters of the narrow LMM / the paper's)"

    check(name, share, test, success=f"The narrow LMM keeps {expected:.1%} of the parameters.")


__all__ = [
    "LOSS_TERMS",
    "SCHEDULES",
    "check_attention",
    "check_narrow_share",
    "check_objective",
    "check_sampling",
    "check_schedule",
    "check_step",
    "objective_inputs",
    "sampled_labels",
]
