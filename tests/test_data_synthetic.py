"""The built-in synthetic dataset: deterministic, well-formed, and learnable only by look."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from runs import export_synthetic
from scipy import ndimage
from torch import nn

from wavegms.data import SegmentationDataset, SyntheticDataset, make_synthetic_datasets
from wavegms.engine.prior import constant_mask_prior, prior_dice


@pytest.fixture(autouse=True)
def one_thread():
    # The CI machine has 2 shared cores: torch's intra-op threads would only fight.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize("kind", ["ultrasound", "endoscopy", "mixed"])
def test_items_are_well_formed(kind):
    ds = SyntheticDataset(6, image_size=48, kind=kind, seed=3)
    for i in range(len(ds)):
        item = ds[i]
        assert item["image"].shape == (3, 48, 48) and item["image"].dtype == torch.float32
        assert item["mask"].shape == (1, 48, 48) and item["mask"].dtype == torch.float32
        assert item["image"].min() >= 0.0 and item["image"].max() <= 1.0
        assert set(item["mask"].unique().tolist()) <= {0.0, 1.0} and item["mask"].mean() < 0.5
        assert item["name"] == ds.names[i]


def test_names_and_kinds():
    mixed = SyntheticDataset(3, kind="mixed")
    assert mixed.names == ["synthetic_us_00000", "synthetic_endo_00001", "synthetic_us_00002"]
    assert mixed.classes == {
        "synthetic_us_00000": "ultrasound",
        "synthetic_endo_00001": "endoscopy",
        "synthetic_us_00002": "ultrasound",
    }
    us = SyntheticDataset(1, kind="ultrasound")[0]["image"]
    assert torch.equal(us[0], us[1]) and torch.equal(us[1], us[2])  # grey, as in ultrasound
    endo = SyntheticDataset(1, kind="endoscopy")[0]["image"]
    assert (endo[0] - endo[2]).mean() > 0.1  # reddish mucosa
    with pytest.raises(ValueError, match="kind"):
        SyntheticDataset(1, kind="mri")


def test_item_depends_only_on_seed_index_kind_and_size():
    a = SyntheticDataset(10, image_size=32, seed=5)
    b = SyntheticDataset(3, image_size=32, seed=5)
    later = a[7]  # out of order on purpose
    for i in range(3):
        assert torch.equal(a[i]["image"], b[i]["image"]) and torch.equal(a[i]["mask"], b[i]["mask"])
    assert torch.equal(later["image"], a[7]["image"])
    assert not torch.equal(a[0]["image"], SyntheticDataset(1, image_size=32, seed=6)[0]["image"])
    assert not torch.equal(a[0]["image"], a[1]["image"])


def test_split_datasets_are_disjoint_and_stable():
    small = make_synthetic_datasets(4, 2, 3, image_size=32, seed=1)
    large = make_synthetic_datasets(9, 2, 3, image_size=32, seed=1)
    names = [n for ds in small.values() for n in ds.names]
    assert len(names) == len(set(names)) == 9
    assert small["val"].names == ["synthetic_us_val_00000", "synthetic_us_val_00001"]
    for split in ("val", "test"):  # the evaluation sets do not move when n_train changes
        assert torch.equal(small[split][1]["image"], large[split][1]["image"])
    assert not torch.equal(small["train"][0]["image"], small["test"][0]["image"])


def test_lesions_are_anywhere_of_any_size_and_count():
    # What makes a constant mask useless: position, size and count all vary.
    ds = SyntheticDataset(300, image_size=64, kind="ultrasound", seed=0)
    masks = [ds.generate(i)[1] for i in range(len(ds))]
    counts = np.array([ndimage.label(m)[1] for m in masks])
    assert 0.1 < (counts == 0).mean() < 0.2  # ~15% without a lesion
    assert 0.14 < (counts == 2).mean() < 0.26 and counts.max() == 2  # ~20% with two
    fractions = np.array([m.mean() for m, c in zip(masks, counts, strict=True) if c == 1])
    assert fractions.min() < 0.03 and fractions.max() > 0.1
    centres = np.array([ndimage.center_of_mass(m) for m, c in zip(masks, counts, strict=True) if c])
    quadrant = (centres[:, 0] > 32) * 2 + (centres[:, 1] > 32)
    assert np.bincount(quadrant, minlength=4).min() > 0.15 * len(centres)  # no favourite place
    assert (np.abs(centres - 31.5) > 20).any(1).mean() > 0.25  # near a border, often


def test_a_constant_mask_scores_poorly():
    for kind in ("ultrasound", "endoscopy"):
        data = make_synthetic_datasets(64, 0, 64, image_size=64, kind=kind, seed=1)
        train_masks, test_masks = (
            torch.stack([split[i]["mask"] for i in range(len(split))])
            for split in (data["train"], data["test"])
        )
        mean_mask, threshold = constant_mask_prior(train_masks)
        assert prior_dice(mean_mask, threshold, test_masks).mean() < 0.3, kind


def test_lesions_stand_out_darker_or_brighter():
    ds = SyntheticDataset(80, image_size=64, kind="ultrasound", seed=0)
    contrasts = []
    for i in range(len(ds)):
        image, mask = ds.generate(i)
        labels, n = ndimage.label(mask)
        for k in range(1, n + 1):
            lesion = labels == k
            around = ndimage.binary_dilation(lesion, iterations=4) & ~mask
            contrasts.append(image[lesion, 0].mean() / image[around, 0].mean())
    contrasts = np.log(contrasts)
    # Visibly different, most by far (a bright lesion above its own posterior enhancement, less).
    assert np.abs(contrasts).min() > np.log(1.1)
    assert np.percentile(np.abs(contrasts), 5) > np.log(1.3)
    assert 0.45 < (contrasts < 0).mean() < 0.85  # mostly hypoechoic, some hyperechoic


def test_export_round_trips_through_the_prepared_layout(tmp_path):
    ds = SyntheticDataset(3, image_size=32, kind="mixed", seed=2)
    folder = export_synthetic(ds, tmp_path / "synthetic")
    assert sorted(SegmentationDataset(folder).names) == sorted(ds.names)
    files = SegmentationDataset(folder, names=ds.names, image_size=32)
    assert files.classes == ds.classes
    for i in range(3):
        assert torch.allclose(files[i]["image"], ds[i]["image"], atol=0.5 / 255 + 1e-6)
        assert torch.equal(files[i]["mask"], ds[i]["mask"])


def _dice(pred: torch.Tensor, target: torch.Tensor) -> float:
    inter = (pred * target).sum((1, 2, 3))
    return ((2 * inter + 1e-6) / (pred.sum((1, 2, 3)) + target.sum((1, 2, 3)) + 1e-6)).mean().item()


def test_a_trained_model_beats_a_trivial_one():
    data = make_synthetic_datasets(64, 0, 32, image_size=64, kind="mixed", seed=0)

    def stack(ds):
        items = [ds[i] for i in range(len(ds))]
        return torch.stack([it["image"] for it in items]), torch.stack([it["mask"] for it in items])

    x_train, y_train = stack(data["train"])
    x_test, y_test = stack(data["test"])
    torch.manual_seed(0)
    net = nn.Sequential(  # a tiny dilated CNN at half resolution: ~7 s of CPU
        nn.Conv2d(3, 16, 2, stride=2),
        nn.ReLU(),
        nn.Conv2d(16, 16, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(16, 16, 3, padding=2, dilation=2),
        nn.ReLU(),
        nn.Conv2d(16, 16, 3, padding=4, dilation=4),
        nn.ReLU(),
        nn.Conv2d(16, 1, 1),
        nn.Upsample(scale_factor=2, mode="bilinear"),
    )
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    # Lesions cover a few percent of an image and some images have none: weigh foreground up,
    # or "nothing anywhere" is where plain BCE settles.
    pos_weight = torch.tensor(4.0)
    for _ in range(300):
        idx = torch.randint(0, len(x_train), (16,))
        logits = net(x_train[idx])
        loss = F.binary_cross_entropy_with_logits(logits, y_train[idx], pos_weight=pos_weight)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        trained = _dice((net(x_test) > 0).float(), y_test)
    trivial = max(_dice(torch.ones_like(y_test), y_test), _dice(torch.zeros_like(y_test), y_test))
    # Measured: 0.65 against 0.16 (the empty mask, right on the images without a lesion).
    assert trained > 0.55 and trained > trivial + 0.35, (trained, trivial)
