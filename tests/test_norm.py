"""The encoder's and LMM's GroupNorm: nn.GroupNorm's results in any memory format and size."""

import pytest
import torch
from torch import nn

import wavegms.norm as norm_module
from wavegms.norm import GroupNorm, takes_contiguous_copy


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


def test_the_device_decides_which_channels_last_inputs_take_the_contiguous_copy():
    for side in (8, 28, 56, 224):  # CUDA's kernel returns a contiguous tensor at any size
        assert takes_contiguous_copy("cuda", (2, 32, side, side), channels_last=True)
        assert not takes_contiguous_copy("cuda", (2, 32, side, side), channels_last=False)
    assert takes_contiguous_copy("cpu", (2, 32, 28, 28), channels_last=True)  # the slow kernel
    assert not takes_contiguous_copy("cpu", (2, 32, 32, 32), channels_last=True)
    assert not takes_contiguous_copy("mps", (2, 32, 28, 28), channels_last=True)


def test_on_cuda_a_large_channels_last_map_comes_back_channels_last(monkeypatch):
    # CUDA faked: the forward pass asks the device rule as if its input were on a GPU. At
    # 56 x 56 the CPU rule alone would not copy, so the copy below is CUDA's.
    chosen = []

    def as_on_cuda(device_type, shape, channels_last):
        chosen.append(takes_contiguous_copy("cuda", shape, channels_last))
        return chosen[-1]

    monkeypatch.setattr(norm_module, "takes_contiguous_copy", as_on_cuda)
    torch.manual_seed(0)
    norm = GroupNorm(8, 32)
    with torch.no_grad():
        norm.weight.normal_()
        norm.bias.normal_()
    x = torch.randn(2, 32, 56, 56).contiguous(memory_format=torch.channels_last)
    out = norm(x)
    assert chosen == [True] and out.is_contiguous(memory_format=torch.channels_last)
    expected = nn.functional.group_norm(x, 8, norm.weight, norm.bias, norm.eps)
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)
