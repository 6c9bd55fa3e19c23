"""``wavegms.data.images``, reading image and mask files: every PIL mode, one mask rule for
every scale (0/1, 0/255, anti-aliased), and the promised errors for bad or oversized files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from _paths import HAM_SAMPLE, busi_items, busi_raw, busi_split_masks
from PIL import Image
from sources import soft_disc

from wavegms.data import load_image, load_mask


def _save(img: Image.Image, path: Path, **kw) -> Path:
    img.save(path, **kw)
    return path


@pytest.fixture
def grey() -> np.ndarray:
    return np.arange(12 * 10, dtype=np.uint8).reshape(12, 10) * 2


def test_grey_is_replicated_to_three_channels(tmp_path, grey):
    out = load_image(_save(Image.fromarray(grey), tmp_path / "g.png"))
    assert out.shape == (12, 10, 3) and out.dtype == np.float32
    np.testing.assert_allclose(out[..., 1], grey / 255.0, atol=1e-6)
    assert (out[..., 0] == out[..., 2]).all()


def test_rgb_rgba_and_palette_give_the_same_colours(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 256, (9, 7, 3), dtype=np.uint8)
    rgba = np.concatenate([rgb, np.full((9, 7, 1), 128, np.uint8)], axis=2)
    a = load_image(_save(Image.fromarray(rgb), tmp_path / "rgb.png"))
    b = load_image(_save(Image.fromarray(rgba, "RGBA"), tmp_path / "rgba.png"))
    np.testing.assert_allclose(a, rgb / 255.0, atol=1e-6)
    np.testing.assert_array_equal(a, b)  # alpha dropped, colour untouched
    pal = Image.fromarray(rgb).quantize(colors=256)
    c = load_image(_save(pal, tmp_path / "p.png"))
    np.testing.assert_allclose(c, np.asarray(pal.convert("RGB")) / 255.0, atol=1e-6)


def test_sixteen_bit_keeps_its_full_range(tmp_path):
    a = np.array([[0, 1000, 65535], [32768, 255, 40000]], dtype=np.uint16)
    img = Image.fromarray(a)
    out = load_image(_save(img, tmp_path / "16.png"))
    assert out.shape == (2, 3, 3)
    np.testing.assert_allclose(out[..., 0], a / 65535.0, atol=1e-6)


def test_real_samples_load_in_range():
    busi_file = busi_raw(next(iter(busi_items())))
    width, height = Image.open(busi_file).size
    busi = load_image(busi_file)
    ham = load_image(sorted((HAM_SAMPLE / "images").glob("ISIC_*.jpg"))[0])
    assert busi.shape == (height, width, 3) and ham.shape == (450, 600, 3)
    for a in (busi, ham):
        assert a.dtype == np.float32 and a.min() >= 0.0 and a.max() <= 1.0 and a.max() > 0.5


@pytest.mark.parametrize(
    ("mode", "values"),
    [("L", (0, 255)), ("L", (0, 1)), ("L", (0, 1, 2)), ("1", (0, 1))],
)
def test_any_nonzero_label_is_foreground(tmp_path, mode, values):
    labels = np.zeros((8, 8), np.uint8)
    for k, v in enumerate(values[1:], start=1):
        labels[k, :] = v
    img = Image.fromarray(labels.astype(bool)) if mode == "1" else Image.fromarray(labels)
    out = load_mask(_save(img, tmp_path / "m.png"))
    assert out.dtype == bool
    np.testing.assert_array_equal(out, labels > 0)


def test_rgb_rgba_palette_and_alpha_only_masks(tmp_path):
    shape = np.zeros((10, 10), bool)
    shape[2:6, 3:8] = True
    rgb = np.zeros((10, 10, 3), np.uint8)
    rgb[shape, 0] = 200  # red foreground only
    assert (load_mask(_save(Image.fromarray(rgb), tmp_path / "rgb.png")) == shape).all()
    rgba = np.zeros((10, 10, 4), np.uint8)
    rgba[..., 3] = np.where(shape, 255, 0)  # black everywhere, the alpha draws the shape
    assert (load_mask(_save(Image.fromarray(rgba, "RGBA"), tmp_path / "a.png")) == shape).all()
    pal = Image.fromarray(shape.astype(np.uint8), "P")
    pal.putpalette([0, 0, 0, 255, 255, 255] + [0] * 762)
    assert (load_mask(_save(pal, tmp_path / "p.png")) == shape).all()


def test_busi_rgba_mask_file_reads_as_its_shape():
    files = [busi_raw(n, "_mask_1") for n in busi_split_masks()]
    stored_rgba = [f for f in files if Image.open(f).mode == "RGBA"]
    assert stored_rgba  # the sample keeps BUSI's one RGBA mask file
    width, height = Image.open(stored_rgba[0]).size
    rgba = load_mask(stored_rgba[0])
    assert rgba.shape == (height, width) and 0 < rgba.mean() < 0.5


def test_jpeg_mask_noise_is_not_foreground(tmp_path):
    shape = np.zeros((64, 64), np.uint8)
    shape[16:40, 20:50] = 255
    path = _save(Image.fromarray(shape), tmp_path / "m.jpg", quality=60)
    assert np.unique(np.asarray(Image.open(path))).size > 2  # JPEG did add grey levels
    out = load_mask(path)
    assert (out == (shape > 0)).mean() > 0.99


def test_truncated_png_names_the_file(tmp_path):
    path = tmp_path / "broken.png"
    good = tmp_path / "good.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64), np.uint8)).save(good)
    path.write_bytes(good.read_bytes()[:300])
    for loader in (load_image, load_mask):
        with pytest.raises(ValueError, match="broken.png"):
            loader(path)


def test_not_an_image_and_missing_file(tmp_path):
    text = tmp_path / "notes.png"
    text.write_text("hello")
    with pytest.raises(ValueError, match="notes.png"):
        load_image(text)
    with pytest.raises(FileNotFoundError, match="absent.png"):
        load_mask(tmp_path / "absent.png")


@pytest.mark.parametrize("top", [1, 100, 255])
def test_two_level_masks_on_any_scale_keep_their_shape(tmp_path, top):
    shape = np.zeros((16, 16), bool)
    shape[3:9, 4:12] = True
    path = tmp_path / "m.png"
    Image.fromarray(np.where(shape, np.uint8(top), np.uint8(0))).save(path)
    np.testing.assert_array_equal(load_mask(path), shape)


@pytest.mark.parametrize("top", [100, 255])
def test_anti_aliased_masks_keep_their_shape(tmp_path, top):
    soft, shape = soft_disc(top)
    assert np.unique(soft).size > 8  # a grey ramp, not a label map
    path = tmp_path / "m.png"
    Image.fromarray(soft).save(path)
    got = load_mask(path)
    assert got.sum() > 0.8 * shape.sum()
    assert (got != shape).mean() < 0.05  # at most the one-pixel rim differs


def test_image_over_the_pixel_limit_is_called_too_large(tmp_path, monkeypatch):
    path = tmp_path / "huge.png"
    Image.fromarray(np.zeros((40, 50), np.uint8)).save(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 500)  # 2000 pixels > 2 x 500
    for loader in (load_image, load_mask):
        with pytest.raises(ValueError) as e:
            loader(path)
        message = str(e.value)
        assert "huge.png" in message and "too large" in message and "2000 pixels" in message
        assert "500" in message and "corrupt" not in message
