"""Real images shipped with the package, for the course and examples: no download needed.

``load_samples()`` returns 11 BUSI breast-ultrasound scans with their lesion masks (9 lesions,
2 normal scans with empty masks), downscaled to 256 px; ``busi/README.md`` gives their source,
licence and citation. The folder is in the prepared layout, so every dataset tool reads it too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ...data import load_image, load_mask
from ...data.datasets import list_names, read_info
from ...data.tensors import resize_pair, to_tensors
from ...tiny_vae import check_image_size

_HERE = Path(__file__).resolve().parent
SAMPLE_SETS = ("busi",)


def samples_dir(name: str = "busi") -> Path:
    """The folder of sample set ``name`` (``images/``, ``masks/``, ``info.json``)."""
    if name not in SAMPLE_SETS:
        raise ValueError(f"Unknown sample set {name!r}: choose one of {', '.join(SAMPLE_SETS)}.")
    return _HERE / name


def list_samples(name: str = "busi") -> list[str]:
    """The item names of sample set ``name``, naturally sorted (e.g. ``"benign_82"``)."""
    return list_names(samples_dir(name))


def load_samples(name: str = "busi", image_size: int | None = None) -> list[dict[str, Any]]:
    """The samples of ``name`` as dicts, in :func:`list_samples` order.

    Each dict has ``image`` ``[3, H, W]`` float32 in [0, 1] (grey scans replicated to 3
    channels), ``mask`` ``[1, H, W]`` in {0, 1}, ``name`` and ``label`` (e.g. ``"benign"``).
    ``image_size``: resize to a square of that side (as the model sees them, e.g. 224; a
    positive multiple of 8, as the model needs); None keeps each scan's own size (longer
    side 256 px).
    """
    if image_size is not None:
        check_image_size(image_size)
    root = samples_dir(name)
    labels = read_info(root).get("classes") or {}
    items = []
    for item in list_samples(name):
        image, mask = to_tensors(
            load_image(root / "images" / f"{item}.png"), load_mask(root / "masks" / f"{item}.png")
        )
        if image_size is not None:
            image, mask = resize_pair(image, mask, image_size)
        items.append({"image": image, "mask": mask, "name": item, "label": labels.get(item, "")})
    return items


__all__ = ["SAMPLE_SETS", "list_samples", "load_samples", "samples_dir"]
