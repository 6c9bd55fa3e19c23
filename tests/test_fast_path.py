"""The speed options (mixed precision, channels-last) keep results equivalent to plain fp32."""

import copy

import pytest
import torch
from batches import disks

from wavegms import WaveGMS
from wavegms.device import autocast
from wavegms.losses import WaveGMSLoss

# bf16 keeps ~3 significant digits; summed over heads, the objective agrees to about 1%.
LOSS_RTOL = 0.03


def objective(model, images, masks, dtype, channels_last):
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(memory_format=fmt)
    torch.manual_seed(123)  # the same reparameterisation noise for every variant
    with autocast(torch.device("cpu"), dtype):
        losses = WaveGMSLoss()(model(images, masks), masks)
    model.zero_grad()
    losses["total"].backward()
    grad = torch.cat([p.grad.flatten() for p in model.parameters()])
    model.to(memory_format=torch.contiguous_format)
    return losses, grad


@pytest.fixture(scope="module")
def trained(tiny_vae):
    """A model after a few steps, so predictions are not all near the 0.5 threshold."""
    torch.manual_seed(0)
    model = WaveGMS(tiny_vae, image_size=64).train()
    images, masks = disks(64, batch=4, seed=5)
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3)
    for _ in range(15):
        loss = WaveGMSLoss()(model(images, masks), masks)["total"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model, images, masks


@pytest.mark.parametrize(
    ("dtype", "channels_last"),
    [(None, True), (torch.bfloat16, False), (torch.bfloat16, True)],
    ids=["fp32-channels-last", "bf16", "bf16-channels-last"],
)
def test_fast_training_objective_matches_fp32(trained, dtype, channels_last):
    model, images, masks = trained
    model = copy.deepcopy(model)
    reference, ref_grad = objective(model, images, masks, None, False)
    fast, grad = objective(model, images, masks, dtype, channels_last)
    for key in reference:
        assert fast[key].item() == pytest.approx(reference[key].item(), rel=LOSS_RTOL), key
    # The update direction is the same too.
    assert torch.nn.functional.cosine_similarity(grad, ref_grad, dim=0) > 0.95


def test_fast_predict_matches_fp32(trained):
    model, images, _ = trained
    reference = model.predict(images)
    model.to(memory_format=torch.channels_last)
    fast = model.predict(images, precision="bf16")
    model.to(memory_format=torch.contiguous_format)
    assert fast.dtype == torch.float32
    assert (fast - reference).abs().mean() < 0.02
    assert ((fast > 0.5) == (reference > 0.5)).float().mean() > 0.98
