"""The real course samples shipped in the package."""

from __future__ import annotations

import torch

from wavegms.course.samples import list_samples, load_samples, samples_dir
from wavegms.data import SegmentationDataset


def test_samples_are_real_busi_scans_with_binary_masks():
    items = load_samples()
    assert [i["name"] for i in items] == list_samples() and 8 <= len(items) <= 12
    for item in items:
        image, mask = item["image"], item["mask"]
        assert image.dtype == torch.float32 and image.shape[0] == 3
        assert max(image.shape[1:]) == 256 and mask.shape == (1, *image.shape[1:])
        assert image.min() >= 0.0 and image.max() <= 1.0 and image.std() > 0.05  # not blank
        assert set(mask.unique().tolist()) <= {0.0, 1.0}
        assert (mask.sum() > 0) == (item["label"] != "normal")


def test_samples_resize_to_the_model_size_and_read_as_a_prepared_dataset():
    items = load_samples(image_size=64)
    assert all(i["image"].shape == (3, 64, 64) and i["mask"].shape == (1, 64, 64) for i in items)
    dataset = SegmentationDataset(samples_dir(), list_samples(), 64)
    assert torch.equal(dataset[0]["mask"], items[0]["mask"])
    assert torch.allclose(dataset[0]["image"], items[0]["image"], atol=1e-6)


def test_samples_come_with_attribution():
    card = (samples_dir() / "README.md").read_text()
    assert "Al-Dhabyani" in card and "10.1016/j.dib.2019.104863" in card
