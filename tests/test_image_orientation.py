"""Camera and phone JPEGs are read upright, as image viewers show them: their EXIF orientation
is applied, so a mask lines up with the image the user sees (issue 22, item 16)."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from wavegms import WaveGMS
from wavegms.data import load_image, load_mask
from wavegms.engine.predict import predict_files

ROTATED_CW = 6  # EXIF orientation: the stored pixels are shown turned 90 degrees clockwise


def _stored_sideways(path, height=20, width=40):  # noqa: ANN001, ANN202
    """A JPEG stored ``height x width`` with a bright top-left block, tagged orientation 6."""
    stored = np.full((height, width), 40, np.uint8)
    stored[:8, :8] = 230
    exif = Image.Exif()
    exif[0x0112] = ROTATED_CW
    Image.fromarray(stored).save(path, quality=95, exif=exif)
    return stored


def test_an_exif_rotated_jpeg_is_read_as_viewers_show_it(tmp_path):
    path = tmp_path / "phone.jpg"
    stored = _stored_sideways(path)
    image = load_image(path)
    assert image.shape == (40, 20, 3)  # displayed: 20 wide, 40 high
    shown = np.rot90(stored, k=-1) / 255  # turned clockwise
    assert np.abs(image[..., 0] - shown).mean() < 0.02
    assert image[:8, -8:].mean() > 0.8 and image[:8, :8].mean() < 0.3  # the block: top right
    assert load_mask(path).shape == (40, 20)  # masks follow the same rule


def test_predict_writes_the_mask_in_the_orientation_viewers_show(tmp_path, tiny_vae):
    path = tmp_path / "phone.jpg"
    _stored_sideways(path)
    torch.manual_seed(0)
    model = WaveGMS(tiny_vae, image_size=64).eval()
    (mask_path,) = predict_files(model, [path], tmp_path / "masks", progress=False).written
    with Image.open(mask_path) as mask:
        assert mask.size == (20, 40)  # (width, height) as shown, not as stored
