"""Augmentation keeps masks binary and aligned with their images."""

from __future__ import annotations

import pytest
import torch

from wavegms.data import Augment


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # 2 shared CPU cores: extra threads only fight
    yield
    torch.set_num_threads(before)


def _shapes(batch: int = 8, h: int = 48, w: int = 48) -> torch.Tensor:
    """Masks ``[B, 1, H, W]``: an asymmetric "F" per sample, placed differently in each, so any
    flip or rotation applied to the image but not to the mask (or vice versa) shows."""
    masks = torch.zeros(batch, 1, h, w)
    for b in range(batch):
        y, x = 8 + b % 5, 10 + (3 * b) % 7
        masks[b, 0, y : y + 26, x : x + 6] = 1  # stem
        masks[b, 0, y : y + 6, x : x + 22] = 1  # top bar
        masks[b, 0, y + 11 : y + 16, x : x + 14] = 1  # middle bar
    return masks


def _iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    a, b = a.bool(), b.bool()
    return (a & b).sum((1, 2, 3)).float() / (a | b).sum((1, 2, 3)).clamp(min=1).float()


def test_masks_stay_binary_and_aligned_over_many_seeds():
    aug = Augment(jitter_p=0.0)  # colour jitter off: the image must stay a copy of the mask
    masks = _shapes()
    images = masks.repeat(1, 3, 1, 1)
    changed = 0
    for seed in range(25):
        torch.manual_seed(seed)
        out_images, out_masks = aug(images, masks)
        assert set(out_masks.unique().tolist()) <= {0.0, 1.0}
        assert _iou(out_images[:, :1] > 0.5, out_masks).min() > 0.95
        changed += int((out_masks != masks).any(dim=(1, 2, 3)).sum())
    assert changed > 0.8 * 25 * len(masks)  # the transforms did act


def test_each_geometric_step_alone_keeps_alignment():
    masks = _shapes(16)
    images = masks.repeat(1, 3, 1, 1)
    flip = Augment(hflip=1.0, vflip=0.0, rot90=0.0, jitter_p=0.0, affine_p=0.0)
    assert torch.equal(flip(images, masks)[1], masks.flip(-1))
    rot = Augment(hflip=0.0, vflip=0.0, rot90=1.0, jitter_p=0.0, affine_p=0.0)
    torch.manual_seed(0)
    rot_images, rot_masks = rot(images, masks)
    turns = set()
    for b in range(len(masks)):
        matches = [
            k for k in range(4) if torch.equal(rot_masks[b], torch.rot90(masks[b], k, (1, 2)))
        ]
        assert len(matches) == 1 and torch.equal(rot_images[b, :1], rot_masks[b])
        turns.add(matches[0])
    assert turns == {0, 1, 2, 3}
    affine = Augment(hflip=0.0, vflip=0.0, rot90=0.0, jitter_p=0.0, affine_p=1.0)
    torch.manual_seed(1)
    aff_images, aff_masks = affine(images, masks)
    assert (aff_masks != masks).any(dim=(1, 2, 3)).all()  # every sample moved
    assert _iou(aff_images[:, :1] > 0.5, aff_masks).min() > 0.95
    assert set(aff_masks.unique().tolist()) == {0.0, 1.0}


def test_colour_jitter_touches_images_only_and_stays_in_range():
    aug = Augment(hflip=0.0, vflip=0.0, rot90=0.0, jitter=0.1, jitter_p=1.0, affine_p=0.0)
    torch.manual_seed(0)
    images = torch.rand(8, 3, 32, 32) * 0.2 + 0.8  # near the top of [0, 1]
    masks = _shapes(8, 32, 32)
    out_images, out_masks = aug(images, masks)
    assert torch.equal(out_masks, masks)
    assert not torch.allclose(out_images, images)
    assert out_images.min() >= 0.0 and out_images.max() <= 1.0
    assert (out_images - images).abs().mean() < 0.2  # a jitter, not a blackout


def test_deterministic_under_manual_seed_and_keeps_dtype_and_shape():
    aug = Augment()
    images, masks = torch.rand(6, 3, 32, 40), _shapes(6, 32, 40).double()
    torch.manual_seed(3)
    a = aug(images, masks)
    torch.manual_seed(3)
    b = aug(images, masks)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert a[0].shape == (6, 3, 32, 40) and a[1].dtype == torch.float64  # non-square stays
    half = aug(images.half(), masks)[0]
    assert half.dtype == torch.float16 and half.device == images.device


def test_rejects_mismatched_inputs():
    aug = Augment()
    with pytest.raises(ValueError, match="masks"):
        aug(torch.rand(2, 3, 8, 8), torch.rand(2, 8, 8))
    with pytest.raises(ValueError, match="differ"):
        aug(torch.rand(2, 3, 8, 8), torch.rand(2, 1, 8, 9))


def _former_flips_and_rotation(aug: Augment, images: torch.Tensor, masks: torch.Tensor):
    """What Augment did before its one gather (kornia off): the same draws in the same order,
    then each sample flipped and rotated by itself."""
    x, m = images.float(), (masks > 0.5).float()
    b = len(x)
    hflip, vflip = torch.rand(b) < aug.hflip, torch.rand(b) < aug.vflip
    apply = torch.rand(b) < aug.rot90
    square = x.shape[-1] == x.shape[-2]
    k = torch.randint(0, 4, (b,)) if square else 2 * torch.randint(0, 2, (b,))
    k = torch.where(apply, k, torch.zeros_like(k))
    out = []
    for i in range(b):
        pair = torch.cat([x[i], m[i]])
        pair = pair.flip(-1) if hflip[i] else pair
        pair = pair.flip(-2) if vflip[i] else pair
        out.append(torch.rot90(pair, int(k[i]), dims=(-2, -1)))
    out = torch.stack(out)
    return out[:, :3], out[:, 3:], {(bool(h), bool(v), int(t)) for h, v, t in zip(hflip, vflip, k)}


@pytest.mark.parametrize(("h", "w", "layouts"), [(24, 24, 16), (16, 20, 8)])
def test_flips_and_rotation_equal_flipping_and_rotating_each_sample(h, w, layouts):
    # Same draws, same pixels: the distribution is the former one (k uniform in {0, 1, 2, 3}
    # when applied, 0 or 180 degrees for a non-square image), and masks stay aligned.
    aug = Augment(hflip=0.5, vflip=0.5, rot90=0.75, jitter_p=0.0, affine_p=0.0)
    images, masks = torch.rand(48, 3, h, w), _shapes(48, h, w)
    seen = set()
    for seed in range(3):
        torch.manual_seed(seed)
        out_images, out_masks = aug(images, masks)
        torch.manual_seed(seed)
        want_images, want_masks, drawn = _former_flips_and_rotation(aug, images, masks)
        assert torch.equal(out_images, want_images) and torch.equal(out_masks, want_masks)
        seen |= drawn
    assert len(seen) == layouts  # every flip / rotation combination was exercised


def test_flips_and_rotation_read_nothing_back(monkeypatch):
    # The training loop never waits for the device: reading a value (`if tensor`, .item(),
    # .nonzero(), .tolist()) would. On the CPU only a patched Tensor can tell.
    def read_back(*_args, **_kwargs):
        raise AssertionError("Augment read a value back from the device")

    aug = Augment(hflip=0.5, vflip=0.5, rot90=1.0, jitter_p=0.0, affine_p=0.0)
    batches = [
        (torch.rand(6, 3, 32, 32), _shapes(6, 32, 32)),
        (torch.rand(6, 3, 32, 40), _shapes(6, 32, 40)),
    ]
    for name in ("__bool__", "item", "nonzero", "tolist"):
        monkeypatch.setattr(torch.Tensor, name, read_back)
    for images, masks in batches:
        out_images, out_masks = aug(images, masks)
        assert out_images.shape == images.shape and out_masks.shape == masks.shape


@pytest.mark.parametrize("settings", [{}, {"jitter_p": 1.0, "affine_p": 1.0}])
def test_a_whole_call_reads_nothing_back_from_the_batchs_device(settings):
    # A meta tensor has a shape and no values: any read-back, in our code or in kornia's
    # (.item(), `if tensor`, a copy to the CPU), raises. Kept on the CPU as the training loop
    # keeps it, kornia draws there and only sends its parameters to the batch's device.
    aug = Augment(**settings)
    images = torch.rand(12, 3, 64, 64, device="meta")
    masks = torch.rand(12, 1, 64, 64, device="meta", dtype=torch.float16)
    out_images, out_masks = aug(images, masks)
    assert out_images.device.type == out_masks.device.type == "meta"
    assert out_images.shape == images.shape and out_masks.shape == masks.shape
    assert out_masks.dtype == torch.float16
