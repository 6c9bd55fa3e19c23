"""Notebook 04's checks accept the right answer and reject the wrong but plausible ones."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage
from verdicts import verdict_of

from wavegms.course.exercises import RETURNED_NOTHING, evaluation

# ---- Dice and IoU ----------------------------------------------------------------------------


def dice_and_iou(pred, truth):
    p, t = pred.sum().item(), truth.sum().item()
    if p + t == 0:
        return 1.0, 1.0
    both = (pred & truth).sum().item()
    return 2 * both / (p + t), both / (p + t - both)


def authors_empty_rule(pred, truth):  # empty/empty scores 0, as the published code does
    p, t = pred.sum().item(), truth.sum().item()
    both = (pred & truth).sum().item()
    return (2 * both / (p + t), both / (p + t - both)) if p + t else (0.0, 0.0)


def nan_when_empty(pred, truth):
    p, t = pred.sum().float(), truth.sum().float()
    both = (pred & truth).sum().float()
    return (2 * both / (p + t)).item(), (both / (p + t - both)).item()


def dice_over_union(pred, truth):  # 2|P n T| / |P u T|
    p, t = pred.sum().item(), truth.sum().item()
    both = (pred & truth).sum().item()
    return (2 * both / (p + t - both), both / (p + t - both)) if p + t else (1.0, 1.0)


def swapped(pred, truth):
    dice, iou = dice_and_iou(pred, truth)
    return iou, dice


def no_return(pred, truth):
    dice_and_iou(pred, truth)


def scaffold(pred, truth):  # the student edition's stub, untouched
    dice = iou = ...
    return dice, iou


def test_dice_iou_accepts_the_rules_as_a_tuple_or_a_list(capsys):
    line = verdict_of(capsys, evaluation.check_dice_iou, dice_and_iou)
    assert line.startswith("Exercise 1: correct")
    as_list = verdict_of(capsys, evaluation.check_dice_iou, lambda p, t: list(dice_and_iou(p, t)))
    assert as_list.startswith("Exercise 1: correct")


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (authors_empty_rule, "both empty"),
        (nan_when_empty, "both empty"),
        (dice_over_union, "expected"),
        (swapped, "expected"),
        (lambda p, t: 0.5, "2 number(s) expected"),
    ],
)
def test_dice_iou_rejects(capsys, answer, reason):
    line = verdict_of(capsys, evaluation.check_dice_iou, answer)
    assert line.startswith("Exercise 1: not quite") and reason in line, line


def test_dice_iou_knows_a_stub_from_a_missing_return(capsys):
    assert "not done yet" in verdict_of(capsys, evaluation.check_dice_iou, scaffold)
    assert RETURNED_NOTHING in verdict_of(capsys, evaluation.check_dice_iou, no_return)


# ---- HD95 ------------------------------------------------------------------------------------


def boundary(mask):
    m = mask.numpy()
    return m & ~ndimage.binary_erosion(m)


def directed(a, b):
    return ndimage.distance_transform_edt(~boundary(b))[boundary(a)]


def hd95_by_hand(pred, truth):
    if not pred.any() and not truth.any():
        return 0.0
    if not pred.any() or not truth.any():
        return float(np.hypot(*pred.shape))
    forward, backward = directed(pred, truth), directed(truth, pred)
    return max(np.percentile(forward, 95), np.percentile(backward, 95))


def with_rule(distance):
    def answer(pred, truth):
        if pred.any() and truth.any():
            return distance(directed(pred, truth), directed(truth, pred))
        return hd95_by_hand(pred, truth)

    return answer


def authors_hd95(pred, truth):  # 0, the best value, whenever a mask is empty
    return hd95_by_hand(pred, truth) if pred.any() and truth.any() else 0.0


def infinite_when_one_empty(pred, truth):
    if pred.any() != truth.any():
        return float("inf")
    return hd95_by_hand(pred, truth)


def test_hd95_accepts_the_larger_directed_percentile(capsys):
    assert verdict_of(capsys, evaluation.check_hd95, hd95_by_hand).startswith("Exercise 2: correct")


@pytest.mark.parametrize(
    ("answer", "case"),
    [
        (with_rule(lambda f, b: np.percentile(np.concatenate([f, b]), 95)), "stray blob"),
        (with_rule(lambda f, b: (np.percentile(f, 95) + np.percentile(b, 95)) / 2), "for"),
        (with_rule(lambda f, b: max(f.max(), b.max())), "stray blob"),  # plain Hausdorff
        (with_rule(lambda f, b: max(np.percentile(f, 90), np.percentile(b, 90))), "for"),
        (authors_hd95, "empty"),
        (infinite_when_one_empty, "empty"),
    ],
)
def test_hd95_rejects(capsys, answer, case):
    line = verdict_of(capsys, evaluation.check_hd95, answer)
    assert line.startswith("Exercise 2: not quite") and case in line, line


def test_the_mask_pairs_cover_every_empty_case_and_decide_between_percentile_variants():
    pairs = evaluation.mask_pairs()
    kinds = {(bool(p.any()), bool(t.any())) for p, t in pairs.values()}
    assert kinds == {(False, False), (True, False), (False, True), (True, True)}
    for pred, truth in pairs.values():  # nothing on the border, where outlines are defined apart
        for mask in (pred, truth):
            assert not (mask[0].any() or mask[-1].any() or mask[:, 0].any() or mask[:, -1].any())


# ---- the threshold sweep ---------------------------------------------------------------------


@pytest.fixture
def sweep_inputs():
    generator = torch.Generator().manual_seed(0)
    masks = torch.stack([evaluation.disk(20 + k, 24, 6 + k)[None] for k in range(4)]).float()
    probs = (0.6 * masks + 0.5 * torch.rand(masks.shape, generator=generator)).clamp(0, 1)
    return probs, masks


def test_threshold_sweep_accepts_the_recomputed_means(capsys, sweep_inputs):
    probs, masks = sweep_inputs
    means = [
        evaluation.dice_iou(probs > t, masks > 0.5)[0].mean().item()
        for t in evaluation.thresholds()
    ]
    for answer in (means, np.array(means), torch.tensor(means), tuple(means)):
        line = verdict_of(capsys, evaluation.check_threshold_sweep, answer, probs, masks)
        assert line.startswith("Exercise 3: correct"), line


def test_threshold_sweep_rejects_other_numbers(capsys, sweep_inputs):
    probs, masks = sweep_inputs
    pooled = []
    for t in evaluation.thresholds():
        pred = probs > t
        truth = masks > 0.5
        pooled.append((2 * (pred & truth).sum() / (pred.sum() + truth.sum())).item())
    iou = [
        evaluation.dice_iou(probs > t, masks > 0.5)[1].mean().item()
        for t in evaluation.thresholds()
    ]
    for answer in (pooled, iou, [0.5] * 9, [0.5] * 11):
        line = verdict_of(capsys, evaluation.check_threshold_sweep, answer, probs, masks)
        assert line.startswith("Exercise 3: not quite"), line


# ---- the mean and the pooled Dice ------------------------------------------------------------


def two_cases():
    big, tiny = evaluation.disk(24, 24, 16), evaluation.disk(6, 6, 2)
    preds = torch.stack([evaluation.disk(25, 24, 16), torch.zeros_like(tiny)])[:, None]
    return preds, torch.stack([big, tiny])[:, None]


def test_mean_vs_pooled_accepts_masks_as_tensors_or_lists(capsys):
    preds, truths = two_cases()
    for answer in ((preds, truths), [list(preds[:, 0]), list(truths[:, 0])]):
        line = verdict_of(capsys, evaluation.check_mean_vs_pooled, answer)
        assert line.startswith("Exercise 4: correct") and "pooled Dice 0.9" in line, line


def test_mean_vs_pooled_rejects_a_typed_summary_and_cases_that_do_not_show_it(capsys):
    preds, truths = two_cases()
    typed = {"dice_mean": 0.48, "dice_pooled": 0.95}
    found_tiny = preds.clone()
    found_tiny[1] = truths[1]
    same_size = torch.stack([truths[0], truths[0]])
    for answer in (
        typed,
        (found_tiny, truths),
        (preds, same_size),
        (torch.zeros_like(preds), truths),
    ):
        line = verdict_of(capsys, evaluation.check_mean_vs_pooled, answer)
        assert line.startswith("Exercise 4: not quite"), line
