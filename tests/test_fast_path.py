"""The speed and memory options (mixed precision, channels-last, gradient checkpointing) keep
results equivalent to plain fp32."""

import copy

import pytest
import torch
from batches import disks

from wavegms import WaveGMS
from wavegms.lmm import SpatialSelfAttention
from wavegms.losses import WaveGMSLoss
from wavegms.utils.device import autocast

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


@pytest.mark.parametrize("prepared", [False, True], ids=["autocast", "bf16-weights"])
def test_fast_predict_matches_fp32(trained, prepared):
    model, images, _ = trained
    reference = model.predict(images)
    model = copy.deepcopy(model)
    if prepared:
        model.prepare_for_inference("bf16")  # channels-last and bf16 weights
        assert model.dtype == torch.bfloat16
    else:
        model.to(memory_format=torch.channels_last)
    fast = model.predict(images, precision="bf16")
    assert fast.dtype == torch.float32
    assert (fast - reference).abs().mean() < 0.02
    assert ((fast > 0.5) == (reference > 0.5)).float().mean() > 0.98


@pytest.mark.parametrize("dtype", [None, torch.bfloat16], ids=["fp32", "bf16"])
def test_cpu_attention_matches_the_fused_kernel(dtype):
    """The LMM's two-matmul CPU attention computes what scaled_dot_product_attention does."""
    torch.manual_seed(0)
    attention = SpatialSelfAttention(64)
    x = torch.randn(2, 64, 12, 12)

    def reference(x):
        b, c, h, w = x.shape
        x_norm = attention.norm(x)
        q, k, v = (
            p(x_norm).flatten(2).transpose(1, 2) for p in (attention.q, attention.k, attention.v)
        )
        attended = torch.nn.functional.scaled_dot_product_attention(q, k, v)
        return x + attention.proj(attended.transpose(1, 2).reshape(b, c, h, w))

    with torch.no_grad():
        expected = reference(x)
        with autocast(torch.device("cpu"), dtype):
            out = attention(x.contiguous(memory_format=torch.channels_last))
    tol = 1e-5 if dtype is None else 3e-2
    torch.testing.assert_close(out.float(), expected, rtol=tol, atol=tol)


def saved_activation_bytes(model, images, masks):
    storages = {}

    def pack(tensor):
        storages[tensor.untyped_storage().data_ptr()] = tensor.untyped_storage().nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        WaveGMSLoss()(model(images, masks), masks)["total"]
    return sum(storages.values())


def test_gradient_checkpointing_keeps_the_step_and_frees_the_decoder_activations(trained):
    model, images, masks = trained
    model = copy.deepcopy(model)
    reference, ref_grad = objective(model, images, masks, None, False)
    kept = saved_activation_bytes(model, images, masks)

    model.enable_gradient_checkpointing()
    checkpointed, grad = objective(model, images, masks, None, False)
    for key in reference:
        torch.testing.assert_close(checkpointed[key], reference[key], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(grad, ref_grad, rtol=1e-4, atol=1e-6)
    # The decoder's activations over three heads are the larger part of what a step keeps;
    # the backward pass recomputes them one head at a time.
    assert saved_activation_bytes(model, images, masks) < 0.6 * kept
