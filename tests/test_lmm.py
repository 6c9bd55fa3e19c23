"""The latent mapping model: its heads, their order, its size in the paper configuration, and
that every weight learns (tiny widths for the forward passes)."""

import pytest
import torch

from wavegms.encoder import MultiResolutionEncoder
from wavegms.lmm import HEAD_NAMES, LatentMappingModel


def count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.fixture
def lmm() -> LatentMappingModel:
    torch.manual_seed(0)
    return LatentMappingModel(latent_channels=4, base_channels=16)  # widths 16, 32, 64, 64


def test_one_prediction_per_head_at_the_latent_resolution(lmm):
    heads = lmm(torch.randn(2, 4, 5, 7))  # any size: no block resamples
    assert isinstance(heads, tuple) and len(heads) == len(HEAD_NAMES) == 3
    assert all(head.shape == (2, 4, 5, 7) for head in heads)
    assert HEAD_NAMES[-1] == "out"  # the last head is the prediction


def test_heads_read_the_last_three_decoder_blocks_coarse_to_fine(lmm):
    decoded, read = [], []
    for block in lmm.up:
        block.register_forward_hook(lambda m, args, out: decoded.append(out))
    for head in lmm.heads:
        head.register_forward_hook(lambda m, args, out: read.append(args[0]))
    lmm(torch.randn(1, 4, 6, 6))
    assert len(decoded) == 4 and len(read) == len(HEAD_NAMES)
    # level2 reads the second decoder block (twice the base width), level1 and out the last two.
    assert all(x is y for x, y in zip(read, decoded[1:]))
    assert [x.shape[1] for x in read] == [32, 16, 16]


def test_the_paper_configuration_has_the_documented_size():
    lmm, encoder = LatentMappingModel(), MultiResolutionEncoder()
    assert count(lmm) == 1_560_112
    assert count(lmm) + count(encoder) == 2_595_804  # docs/paper_map.md, "Parameter counts"


def test_gradients_reach_every_weight_and_the_input(lmm):
    z = torch.randn(2, 4, 6, 6, requires_grad=True)
    sum(head.square().mean() for head in lmm(z)).backward()
    dead = [name for name, p in lmm.named_parameters() if p.grad is None or p.grad.abs().sum() == 0]
    assert dead == []
    assert z.grad is not None and z.grad.abs().sum() > 0
