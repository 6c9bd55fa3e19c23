"""The encoder's and LMM's GroupNorm: nn.GroupNorm's results in any memory format and size."""

import pytest
import torch
from torch import nn

from wavegms.norm import GroupNorm


@pytest.mark.parametrize("size", [8, 28, 40], ids=["8x8", "28x28", "40x40"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
def test_matches_nn_group_norm_and_keeps_channels_last(size, dtype):
    torch.manual_seed(0)
    reference = nn.GroupNorm(8, 32, eps=1e-6)
    with torch.no_grad():
        reference.weight.normal_()
        reference.bias.normal_()
    norm = GroupNorm(8, 32, eps=1e-6)
    norm.load_state_dict(reference.state_dict())  # the same keys as nn.GroupNorm
    reference, norm = reference.to(dtype), norm.to(dtype)
    x = (torch.randn(3, 32, size, size) * 3 + 1).to(dtype)
    x_cl = x.contiguous(memory_format=torch.channels_last).requires_grad_(True)
    x_ref = x.clone().requires_grad_(True)

    out, expected = norm(x_cl), reference(x_ref)
    assert out.is_contiguous(memory_format=torch.channels_last)
    tol = 1e-5 if dtype == torch.float32 else 2e-2
    torch.testing.assert_close(out.float(), expected.float(), rtol=tol, atol=tol)

    grad_out = torch.randn_like(expected)
    out.backward(grad_out.contiguous(memory_format=torch.channels_last))
    expected.backward(grad_out)
    torch.testing.assert_close(x_cl.grad.float(), x_ref.grad.float(), rtol=tol, atol=tol)
    torch.testing.assert_close(
        norm.weight.grad.float(), reference.weight.grad.float(), rtol=tol, atol=tol * 10
    )


def test_contiguous_inputs_take_the_plain_path():
    norm = GroupNorm(4, 16)
    x = torch.randn(2, 16, 10, 10)
    torch.testing.assert_close(norm(x), nn.functional.group_norm(x, 4, norm.weight, norm.bias))
    assert norm(x).is_contiguous()
