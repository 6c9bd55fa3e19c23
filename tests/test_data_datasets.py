"""SegmentationDataset on the prepared layout: items, sizes, and the promised errors."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from _paths import BUSI_SAMPLE, busi_items, busi_split_masks
from PIL import Image

from data_download import prepare
from wavegms.data import DATASETS, SegmentationDataset

BUSI = busi_items()  # natural order: benign_4 before benign_25
BENIGN = [n for n, cls in BUSI.items() if cls == "benign"]
MALIGNANT = [n for n, cls in BUSI.items() if cls == "malignant"]
NORMAL = [n for n, cls in BUSI.items() if cls == "normal"]


@pytest.fixture(scope="module")
def busi(tmp_path_factory) -> Path:
    return prepare("busi", tmp_path_factory.mktemp("data"), BUSI_SAMPLE, progress=False, workers=1)


def _layout(root: Path, items: dict[str, tuple[Image.Image, Image.Image]]) -> Path:
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for name, (image, mask) in items.items():
        image.save(root / "images" / f"{name}.png")
        mask.save(root / "masks" / f"{name}.png")
    return root


def test_items_have_the_promised_shapes_and_values(busi):
    ds = SegmentationDataset(busi, image_size=96)
    assert DATASETS == ("busi", "bus", "kvasir_instrument", "ham10000")
    assert ds.names == list(BUSI)  # natural order
    assert ds.names[:3] != sorted(ds.names)[:3]  # which plain string order would not give
    for i in (0, ds.names.index(NORMAL[0]), len(ds) - 1):
        item = ds[i]
        assert item["image"].shape == (3, 96, 96) and item["image"].dtype == torch.float32
        assert item["mask"].shape == (1, 96, 96) and item["mask"].dtype == torch.float32
        assert item["image"].min() >= 0.0 and item["image"].max() <= 1.0
        assert set(item["mask"].unique().tolist()) <= {0.0, 1.0}
        assert item["name"] == ds.names[i]
    assert ds[ds.names.index(NORMAL[0])]["mask"].sum() == 0
    assert ds.classes == BUSI


def test_resizing_keeps_the_mask_where_the_image_is(busi):
    name = busi_split_masks()[0]  # a lesion whose mask came in two files
    ds = SegmentationDataset(busi, names=[name], image_size=64)
    full = np.asarray(Image.open(busi / "masks" / f"{name}.png")) > 0
    small = ds[0]["mask"][0].numpy() > 0
    # the full-resolution mask, box-averaged to 64 x 64, agrees with the nearest resize
    ref = (
        np.asarray(Image.fromarray(full.astype(np.uint8) * 255).resize((64, 64), Image.BILINEAR))
        > 127
    )
    assert (small == ref).mean() > 0.97


def test_names_select_items_and_cache_changes_at_most_the_8th_bit(busi):
    names = [MALIGNANT[0], BENIGN[1]]  # not in the dataset's own order
    ds = SegmentationDataset(busi, names=names, image_size=32)
    cached = SegmentationDataset(busi, names=names, image_size=32, cache=True)
    assert len(ds) == 2 and ds[0]["name"] == MALIGNANT[0]
    first = [cached[i] for i in range(2)]
    for i in range(2):  # the second pass is served from the cache
        assert torch.equal(cached[i]["image"], first[i]["image"])
        assert torch.allclose(cached[i]["image"], ds[i]["image"], atol=0.5 / 255 + 1e-6)
        assert torch.equal(cached[i]["mask"], ds[i]["mask"])


def test_grey_rgba_palette_and_16_bit_files_load(tmp_path):
    mask = Image.fromarray(np.pad(np.full((4, 4), 255, np.uint8), 2))
    arr = np.linspace(0, 1, 64, dtype=np.float32).reshape(8, 8)
    images = {
        "grey": Image.fromarray((arr * 255).astype(np.uint8)),
        "rgba": Image.fromarray((np.stack([arr] * 4, -1) * 255).astype(np.uint8), "RGBA"),
        "palette": Image.fromarray((arr * 255).astype(np.uint8)).convert("P"),
        "sixteen": Image.fromarray((arr * 65535).astype(np.uint16)),
    }
    root = _layout(tmp_path / "mixed", {k: (v, mask) for k, v in images.items()})
    ds = SegmentationDataset(root, image_size=8)
    for i, name in enumerate(ds.names):
        image = ds[i]["image"]
        assert torch.allclose(image[0], torch.from_numpy(arr), atol=1 / 255 + 1e-6), name
        assert torch.equal(image[0], image[2])
        assert ds[i]["mask"].sum() == 16


def test_missing_root_names_the_folder_and_the_command(tmp_path):
    with pytest.raises(FileNotFoundError) as e:
        SegmentationDataset(tmp_path / "data" / "busi")
    msg = str(e.value)
    assert str(tmp_path / "data" / "busi") in msg
    assert f"python -m data_download busi --root {tmp_path / 'data'}" in msg


def test_wrong_layout_and_missing_items(tmp_path, busi):
    (tmp_path / "ham10000" / "images").mkdir(parents=True)  # no masks/
    with pytest.raises(FileNotFoundError, match="python -m data_download ham10000 --root"):
        SegmentationDataset(tmp_path / "ham10000")
    with pytest.raises(FileNotFoundError, match="benign_9999"):
        SegmentationDataset(busi, names=[BENIGN[0], "benign_9999"])
    root = tmp_path / "busi"
    shutil.copytree(busi, root)
    (root / "masks" / f"{BENIGN[1]}.png").unlink()
    with pytest.raises(FileNotFoundError, match=BENIGN[1]):
        SegmentationDataset(root)


def test_truncated_file_and_size_mismatch_name_the_files(tmp_path, busi):
    root = tmp_path / "busi"
    shutil.copytree(busi, root)
    first, second = BENIGN[:2]  # items 0 and 1
    png = root / "images" / f"{first}.png"
    png.write_bytes(png.read_bytes()[:2000])
    ds = SegmentationDataset(root, image_size=32)
    with pytest.raises(ValueError, match=rf"{first}\.png"):
        ds[0]
    Image.new("L", (10, 10)).save(root / "masks" / f"{second}.png")
    with pytest.raises(ValueError, match=rf"size mismatch.*images/{second}\.png.*masks/{second}"):
        ds[1]
