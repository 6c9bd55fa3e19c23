"""BUSI: Breast Ultrasound Images (Al-Dhabyani et al., 2020), 780 images in 3 classes.

Raw layout: ``Dataset_BUSI_with_GT/{benign,malignant,normal}/"<class> (N).png"`` with masks
``"<class> (N)_mask.png"`` and, for a few cases, ``_mask_1.png`` / ``_mask_2.png`` (one file per
lesion: merged with OR). Items are named as in GMS: ``benign (12).png`` -> ``benign_12``.
Normal cases (empty masks) are kept, with class ``normal``; the paper protocol excludes them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from .discover import describe, image_files
from .recipe import Recipe, Remote
from .staging import Discovery, PreparationError, RawItem

_FILE = re.compile(r"(?i)^(benign|malignant|normal) \((\d+)\)(_mask(?:_\d+)?)?$")


def discover(roots: Sequence[Path]) -> Discovery:
    images: dict[str, Path] = {}
    masks: dict[str, list[Path]] = {}
    for _, _, path in image_files(roots):
        m = _FILE.match(path.stem)
        if not m:
            continue
        name = f"{m.group(1).lower()}_{int(m.group(2))}"
        if m.group(3):
            masks.setdefault(name, []).append(path)
        elif name in images:
            raise PreparationError(
                f"BUSI image {name} found twice: {images[name]} and {path}. Remove the copy."
            )
        else:
            images[name] = path
    missing = sorted(set(images) - set(masks))
    if missing:
        raise PreparationError(
            f"BUSI images without a mask file: {describe([images[n] for n in missing])}. "
            "The source looks incomplete: download it again."
        )
    items = [
        # sorted: "_mask" before "_mask_1", a stable order for the record in info.json
        RawItem(name, images[name], tuple(sorted(masks[name])), name.split("_")[0])
        for name in sorted(images)
    ]
    normal = [it.name for it in items if it.cls == "normal"]
    return Discovery(
        items,
        extra_info={
            "excluded_by_paper_protocol": normal,
            "notes": "Items are named <class>_<N> as in GMS. Several mask files of one image "
            "are merged with OR. Normal cases have empty masks and are excluded by the paper "
            "protocol (GMS lists: 517 train / 130 test).",
        },
    )


RECIPE = Recipe(
    name="busi",
    title="BUSI: Dataset of Breast Ultrasound Images",
    homepage="https://scholar.cu.edu.eg/?q=afahmy/pages/dataset",
    licence="CC0 1.0 (per its public listing)",
    citation="Al-Dhabyani W, Gomaa M, Khaled H, Fahmy A. Dataset of breast ultrasound images. "
    "Data in Brief 28:104863 (2020). https://doi.org/10.1016/j.dib.2019.104863",
    remote_files=lambda: [
        Remote("Dataset_BUSI.zip", ("https://scholar.cu.edu.eg/Dataset_BUSI.zip",)),
    ],
    discover=discover,
    expected_images=780,
    extracted_mb=250,  # Dataset_BUSI.zip is about 200 MB
    name_pattern=_FILE.pattern,
)
