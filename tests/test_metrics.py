"""Metric values, including the empty-mask rules (docs/paper_map.md, "Metrics")."""

from __future__ import annotations

import math

import pytest
import torch
from monai.metrics import compute_dice, compute_iou

from wavegms.engine.metrics import dice_iou, hd95, segmentation_metrics, summarize

SIZE = 32
DIAGONAL = math.hypot(SIZE, SIZE)


def square(top: int, left: int, side: int, size: int = SIZE) -> torch.Tensor:
    mask = torch.zeros(1, size, size, dtype=torch.bool)
    mask[:, top : top + side, left : left + side] = True
    return mask


EMPTY = torch.zeros(1, SIZE, SIZE, dtype=torch.bool)

# (name, pred, target, dice, iou, hd95)
CASES = [
    ("empty/empty", EMPTY, EMPTY, 1.0, 1.0, 0.0),
    ("empty pred", EMPTY, square(4, 4, 8), 0.0, 0.0, DIAGONAL),
    ("empty target", square(4, 4, 8), EMPTY, 0.0, 0.0, DIAGONAL),
    ("perfect", square(4, 4, 8), square(4, 4, 8), 1.0, 1.0, 0.0),
    # Disjoint squares 16 px apart diagonally: no overlap, HD95 at least the gap.
    ("disjoint", square(0, 0, 8), square(16, 16, 8), 0.0, 0.0, None),
    # Shifted by 2 columns: 8x6 overlap of two 8x8 squares; every edge point moves 2 px.
    ("shifted", square(4, 4, 8), square(4, 6, 8), 2 * 48 / 128, 48 / 80, 2.0),
]


def batch(index: int) -> torch.Tensor:
    return torch.stack([case[index] for case in CASES])


def test_spec_edge_cases_in_one_batch() -> None:
    pred, target = batch(1), batch(2)
    dice, iou = dice_iou(pred, target)
    distances = hd95(pred, target)
    for i, (name, *_, want_dice, want_iou, want_hd) in enumerate(CASES):
        assert dice[i].item() == pytest.approx(want_dice), name
        assert iou[i].item() == pytest.approx(want_iou), name
        if want_hd is not None:
            assert distances[i].item() == pytest.approx(want_hd), name
    # Disjoint: nearest boundary points are (7,7) and (16,16), a 9*sqrt(2) gap; never worst-case.
    assert 9 * math.sqrt(2) - 1e-4 <= distances[4].item() < DIAGONAL
    assert dice.shape == iou.shape == distances.shape == (len(CASES),)


def test_float_masks_and_shape_errors() -> None:
    pred = batch(1).float()
    assert torch.equal(dice_iou(pred, batch(2))[0], dice_iou(batch(1), batch(2))[0])
    with pytest.raises(ValueError, match=r"\[B, 1, H, W\]"):
        dice_iou(pred[:, 0], batch(2)[:, 0])
    with pytest.raises(ValueError, match="shapes differ"):
        hd95(pred, batch(2)[..., :16])


def test_dice_iou_agree_with_monai_on_non_empty_masks() -> None:
    generator = torch.Generator().manual_seed(0)
    pred = torch.rand(6, 1, SIZE, SIZE, generator=generator) > 0.6
    target = torch.rand(6, 1, SIZE, SIZE, generator=generator) > 0.5
    dice, iou = dice_iou(pred, target)
    torch.testing.assert_close(dice, compute_dice(pred.float(), target.float())[:, 0])
    torch.testing.assert_close(iou, compute_iou(pred.float(), target.float())[:, 0])


def test_segmentation_metrics_and_summary() -> None:
    probs = batch(1).float() * 0.9  # 0.9 > 0.5: the masks themselves
    per_image = segmentation_metrics(probs, batch(2))
    assert set(per_image) >= {"dice", "iou", "hd95", "intersection", "pred_size", "target_size"}
    summary = summarize(per_image)
    dice = torch.tensor([case[3] for case in CASES], dtype=torch.float64)
    assert summary["n_images"] == len(CASES)
    assert summary["dice_mean"] == pytest.approx(dice.mean().item())
    assert summary["dice_std"] == pytest.approx(dice.std(unbiased=False).item())
    # Pooled: intersections 64 (perfect) + 48 (shifted); sizes 64+64+128+128+128 over the set.
    assert summary["dice_pooled"] == pytest.approx(2 * (64 + 48) / (64 + 64 + 128 + 128 + 128))
    # A higher threshold than every probability predicts nothing at all.
    nothing = segmentation_metrics(probs, batch(2), threshold=0.95)
    assert nothing["pred_size"].sum() == 0
    assert nothing["dice"].tolist() == [1.0, 0.0, 1.0, 0.0, 0.0, 0.0]
    with pytest.raises(ValueError, match="empty"):
        summarize({name: value[:0] for name, value in per_image.items()})
