"""Where the tests' sample data comes from: ``../shared/data`` when present, else built here.

CI has read-only samples in ``../shared/data``: part of the raw BUSI download, five HAM10000
images and the GMS split lists. A fresh clone has no ``../shared``, so each missing one is built
once per process in a temporary folder, in the same layout: raw BUSI from the 11 scans the
package ships (``wavegms/course/samples/busi``), synthetic dermoscopy-like HAM10000 images,
and GMS-format split lists of the published sizes that name those items. Tests read names,
classes and sizes from the folders (see the helpers below), so they assert the same things on
both machines.

``WAVEGMS_TEST_SHARED`` replaces ``../shared`` (``WAVEGMS_TEST_SHARED=/nonexistent`` runs the
tests as on a fresh clone).
"""

from __future__ import annotations

import atexit
import json
import os
import random
import re
import shutil
import tempfile
from functools import cache
from pathlib import Path

import numpy as np
from PIL import Image

SHARED = Path(
    os.environ.get("WAVEGMS_TEST_SHARED") or Path(__file__).resolve().parents[2] / "shared"
)
_BUSI_FILE = re.compile(r"^(benign|malignant|normal) \((\d+)\)\.png$")


@cache
def _scratch() -> Path:
    path = Path(tempfile.mkdtemp(prefix="wavegms-test-data-"))
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path


def _build_busi(root: Path) -> None:
    """The shipped course scans as a raw BUSI download, quirks included.

    BUSI stores grey scans as RGB, lesion masks as 1-bit, normal masks as RGB, and splits a few
    masks over ``_mask.png`` + ``_mask_1.png`` (one of them RGBA): each quirk is reproduced so
    that the preparation tests meet it here too.
    """
    samples = Path(__file__).resolve().parents[1] / "wavegms" / "samples" / "busi"
    classes = json.loads((samples / "info.json").read_text())["classes"]
    split = [n for n in sorted(classes) if classes[n] != "normal"][:2]  # two cases, two masks
    for name, cls in classes.items():
        folder = root / "Dataset_BUSI_with_GT" / cls
        folder.mkdir(parents=True, exist_ok=True)
        stem = f"{cls} ({name.split('_')[1]})"
        Image.open(samples / "images" / f"{name}.png").convert("RGB").save(folder / f"{stem}.png")
        mask = np.asarray(Image.open(samples / "masks" / f"{name}.png")) > 0
        if cls == "normal":
            Image.fromarray(np.zeros((*mask.shape, 3), np.uint8)).save(folder / f"{stem}_mask.png")
            continue
        first = mask
        if name in split:
            # Two overlapping halves of the lesion: each file adds pixels the other lacks.
            cols = np.nonzero(mask.any(axis=0))[0]
            mid, margin = int(np.median(cols)), max(1, len(cols) // 8)
            first, second = mask.copy(), mask.copy()
            first[:, mid + margin :] = False
            second[:, : mid - margin] = False
            if name == split[0]:
                rgba = np.zeros((*mask.shape, 4), np.uint8)
                rgba[second] = 255
                Image.fromarray(rgba, "RGBA").save(folder / f"{stem}_mask_1.png")
            else:
                Image.fromarray(second).save(folder / f"{stem}_mask_1.png")
        Image.fromarray(first).save(folder / f"{stem}_mask.png")


def _build_ham(root: Path) -> None:
    """Five synthetic 600 x 450 dermoscopy-like JPEGs with ``_segmentation.png`` masks."""
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:450, 0:600].astype(np.float32)
    for k in range(5):
        cy, cx = rng.uniform(150, 300), rng.uniform(200, 400)
        ry, rx, angle = rng.uniform(60, 140), rng.uniform(80, 180), rng.uniform(0, np.pi)
        u = ((x - cx) * np.cos(angle) + (y - cy) * np.sin(angle)) / rx
        v = (-(x - cx) * np.sin(angle) + (y - cy) * np.cos(angle)) / ry
        r = np.sqrt(u**2 + v**2)
        lesion = np.clip(1.5 - r, 0, 1)[..., None]  # soft edge, dark core
        vignette = 1 - 0.25 * ((x - 300) ** 2 + (y - 225) ** 2) / 375**2
        skin = np.array([225, 170, 150], np.float32) * vignette[..., None]
        image = skin * (1 - lesion) + np.array([110, 65, 45], np.float32) * lesion
        image += rng.normal(0, 6, image.shape)
        name = f"ISIC_{24306 + 1000 * k + 7:07d}"
        Image.fromarray(np.clip(image, 0, 255).astype(np.uint8)).save(
            root / "images" / f"{name}.jpg", quality=90
        )
        Image.fromarray(np.where(r < 1, 255, 0).astype(np.uint8)).save(
            root / "masks" / f"{name}_segmentation.png"
        )
    (root / "SOURCE_LICENSE.md").write_text("Synthetic images written by tests/_paths.py.\n")


def _build_gms_splits(root: Path) -> None:
    """GMS-format lists of the published sizes, naming the BUSI and HAM items built above.

    BUSI's lists cover all its 437 benign and 210 malignant scans, HAM10000's the ids
    ISIC_0024306..ISIC_0034320, as GMS's do; which name is train or test is made up, except
    that the sample items are train (the shipped BUSI scans come from GMS train).
    """
    from data_download.gms_splits import EXPECTED

    universe = {
        "busi": [f"benign_{i}" for i in range(1, 438)] + [f"malignant_{i}" for i in range(1, 211)],
        "bus": [f"{i:06d}" for i in range(1, 164)],
        "ham10000": [f"ISIC_{i:07d}" for i in range(24306, 34321)],
        "kvasir_instrument": [f"kvasir{i:04d}" for i in range(590)],
    }
    ham = _sample("HAM_SAMPLE") / "images"
    in_train = set(busi_items()) | {p.stem for p in ham.iterdir()}
    root.mkdir(parents=True)
    for dataset, names in universe.items():
        n_train, n_test = EXPECTED[dataset]
        assert len(names) == n_train + n_test
        rest = [n for n in names if n not in in_train]
        random.Random(dataset).shuffle(rest)
        test = rest[:n_test]
        train = [n for n in names if n not in set(test)]
        (root / f"{dataset}.json").write_text(json.dumps({"train": train, "test": test}))


_SAMPLES = {
    "BUSI_SAMPLE": ("data/busi_sample", _build_busi),
    "HAM_SAMPLE": ("data/ham10000_sample", _build_ham),
    "GMS_SPLITS": ("data/splits/gms", _build_gms_splits),
}


@cache
def _sample(name: str) -> Path:
    rel, build = _SAMPLES[name]
    if (SHARED / rel).is_dir():
        return SHARED / rel
    path = _scratch() / rel
    build(path)
    return path


def __getattr__(name: str) -> Path:
    # BUSI_SAMPLE, HAM_SAMPLE, GMS_SPLITS are resolved on first use: most test files (and
    # conftest, which imports SHARED) need none of them, so nothing is built for those.
    if name in _SAMPLES:
        return _sample(name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def busi_items() -> dict[str, str]:
    """``{"benign_4": "benign", ...}``: the scans in ``BUSI_SAMPLE``, in natural order."""
    found = (_BUSI_FILE.match(p.name) for p in _sample("BUSI_SAMPLE").rglob("*.png"))
    items = sorted((m[1], int(m[2])) for m in found if m)
    return {f"{cls}_{n}": cls for cls, n in items}


def busi_raw(name: str, suffix: str = "") -> Path:
    """The raw file of item ``name`` (``"benign_4"``), ``suffix`` e.g. ``"_mask_1"``."""
    cls, n = name.split("_")
    return _sample("BUSI_SAMPLE") / "Dataset_BUSI_with_GT" / cls / f"{cls} ({n}){suffix}.png"


def busi_split_masks() -> list[str]:
    """The items whose mask is split over two files (``_mask.png`` and ``_mask_1.png``)."""
    return [n for n in busi_items() if busi_raw(n, "_mask_1").exists()]
