"""Finding image/mask pairs in a raw dataset folder, liberally.

Users hand us folders in many shapes (the official archive, a re-zipped copy, a Kaggle
mirror, a folder with ``original/`` and ``GT/``): we look for image files anywhere below the
given roots, call a file a mask when it sits in a mask-like folder (``masks``, ``GT``,
``labels`` ...) or its name ends in a mask-like suffix (``_mask``, ``_segmentation`` ...), and
pair images with masks by file name.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from wavegms.data.images import IMAGE_EXTENSIONS

from .extract import is_junk
from .staging import PreparationError, RawItem

__all__ = ["describe", "image_files", "is_junk", "pair_by_name", "strip_mask_suffix"]

MASK_FOLDERS = {
    "mask",
    "masks",
    "gt",
    "gts",
    "groundtruth",
    "ground_truth",
    "ground truth",
    "label",
    "labels",
    "annotation",
    "annotations",
    "segmentation",
    "segmentations",
}
_MASK_SUFFIX = re.compile(r"(?i)[_\- ](mask|segmentation|gt|label)(_\d+)?$")


def image_files(roots: Iterable[Path]) -> list[tuple[int, Path, Path]]:
    """``(root index, root, file)`` for every image file below each root, sorted."""
    out = []
    for i, root in enumerate(roots):
        root = Path(root)
        if root.is_file():
            continue
        for p in sorted(root.rglob("*")):
            if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file() and not is_junk(p):
                out.append((i, root, p))
    return out


def looks_like_mask(path: Path, root: Path) -> bool:
    """A mask by its folder (``GT/``, ``masks/``, ``masks.extracted/``) or by its name suffix."""
    for part in path.relative_to(root).parts[:-1]:
        if part.lower().removesuffix(".extracted") in MASK_FOLDERS:
            return True
    return bool(_MASK_SUFFIX.search(path.stem))


def strip_mask_suffix(stem: str) -> str:
    """``ISIC_0024311_segmentation`` -> ``ISIC_0024311``; ``x_mask_1`` -> ``x``."""
    return _MASK_SUFFIX.sub("", stem)


def pair_by_name(
    roots: Sequence[Path],
    *,
    name_of: Callable[[str], str] = lambda stem: stem,
    classes: dict[str, str] | None = None,
) -> tuple[list[RawItem], list[Path], list[Path]]:
    """Pair image and mask files found below ``roots`` by their (suffix-stripped) stems.

    Files from an earlier root win over same-named files of a later root (a user folder over
    what we extracted from the archives inside it); a name found twice under one root is an
    error, since we could not tell which file is meant.

    Returns:
        ``(items, images without a mask, masks without an image)``.
    """
    images: dict[str, tuple[int, Path]] = {}
    masks: dict[str, tuple[int, list[Path]]] = {}
    for i, root, path in image_files(roots):
        if looks_like_mask(path, root):
            key = name_of(strip_mask_suffix(path.stem))
            if key in masks and masks[key][0] != i:
                continue
            masks.setdefault(key, (i, []))[1].append(path)
        else:
            key = name_of(path.stem)
            if key in images:
                if images[key][0] == i:
                    raise PreparationError(
                        f"two image files for the name {key!r}: {images[key][1]} and {path}. "
                        "Remove the duplicate from the source folder."
                    )
                continue
            images[key] = (i, path)
    items = [
        RawItem(name, path, tuple(masks[name][1]), (classes or {}).get(name))
        for name, (_, path) in sorted(images.items())
        if name in masks
    ]
    lonely_images = [path for name, (_, path) in sorted(images.items()) if name not in masks]
    lonely_masks = [paths[0] for name, (_, paths) in sorted(masks.items()) if name not in images]
    return items, lonely_images, lonely_masks


def describe(paths: Sequence[Path], limit: int = 3) -> str:
    """A short human list: ``a, b, c and 12 more``."""
    shown = ", ".join(str(p) for p in paths[:limit])
    return shown + (f" and {len(paths) - limit} more" if len(paths) > limit else "")


def dominant_pattern(roots: Sequence[Path], patterns: dict[str, str]) -> tuple[str, list[str]]:
    """Which name pattern most image files below ``roots`` follow (mask suffixes stripped).

    Returns ``(key, a few example file names)`` for the pattern matched by more than half of
    the files, or ``("", [])`` when none is (or there are no image files).
    """
    files = [p for _, _, p in image_files(roots)]
    if not files:
        return "", []
    compiled = {key: re.compile(pattern) for key, pattern in patterns.items()}
    for key, pattern in compiled.items():
        hits = [p.name for p in files if pattern.fullmatch(strip_mask_suffix(p.stem))]
        if 2 * len(hits) > len(files):
            return key, hits[:2]
    return "", []
