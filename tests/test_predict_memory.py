"""``predict`` bounds its memory by pixels, not by the number of images, and reads images over
Pillow's warning limit without a raw DecompressionBombWarning (issue 22, "Also")."""

from __future__ import annotations

import warnings

import numpy as np
import PIL.Image
import pytest
import torch
from PIL import Image

from wavegms import WaveGMS
from wavegms.data import load_image
from wavegms.data.images import to_uint8
from wavegms.engine import predict
from wavegms.engine.viz import overlay


@pytest.fixture
def scans(tmp_path):  # noqa: ANN201 - four 40 x 52 grey PNGs
    rng = np.random.default_rng(0)
    paths = []
    for k in range(4):
        path = tmp_path / f"scan{k}.png"
        Image.fromarray(rng.integers(0, 255, (40, 52), np.uint8)).save(path)
        paths.append(path)
    return paths


def test_a_batch_holds_at_most_max_batch_pixels(scans, tiny_vae, tmp_path, monkeypatch):
    torch.manual_seed(0)
    model = WaveGMS(tiny_vae, image_size=64).eval()
    sizes = []
    real = model.predict

    def spy(images, **kwargs):  # noqa: ANN001, ANN003, ANN202
        sizes.append(len(images))
        return real(images, **kwargs)

    monkeypatch.setattr(model, "predict", spy)
    monkeypatch.setattr(predict, "MAX_BATCH_PIXELS", 2 * 40 * 52)  # two of these images
    report = predict.predict_files(model, scans, tmp_path / "masks", batch_size=8, progress=False)
    assert sizes == [2, 2] and len(report.written) == 4


def test_an_image_over_pillows_warning_limit_is_read_without_its_raw_warning(scans, monkeypatch):
    monkeypatch.setattr(PIL.Image, "MAX_IMAGE_PIXELS", 1500)  # 2080 pixels: over, not 2x over
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        image = load_image(scans[0])
    assert image.shape == (40, 52, 3)


def test_the_overlay_made_in_strips_equals_the_whole_one():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (37, 23, 3), np.uint8)
    mask = rng.random((37, 23)) > 0.5
    whole = to_uint8(overlay(image / 255, mask))
    assert np.array_equal(predict._overlay_uint8(image, mask, rows_pixels=50), whole)
