"""Data for Wave-GMS: prepared datasets, splits, a synthetic dataset, and augmentation.

Real datasets are prepared once with ``python -m data_download <dataset> --root DATA_DIR``
into the layout of :mod:`wavegms.data.layout`; :class:`SegmentationDataset` reads it.
:class:`SyntheticDataset` needs no download and is the default of the quick preset, the demo
and the tests. A training run's datasets are built from its settings by
:func:`wavegms.engine.run_data.build_datasets`.

Items of every dataset are dicts: ``image`` float32 ``[3, S, S]`` in [0, 1], ``mask`` float32
``[1, S, S]`` in {0, 1}, ``name`` str.

The names below are imported lazily: ``data_download`` imports :mod:`wavegms.data.images` and
:mod:`wavegms.data.layout`, which must not pull in torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..utils.lazy import lazy_exports

_EXPORTS = {
    "Augment": "augment",
    "DATASETS": "layout",
    "SegmentationDataset": "datasets",
    "Splits": "splits",
    "SyntheticDataset": "synthetic",
    "export_synthetic": "synthetic",
    "load_image": "images",
    "load_mask": "images",
    "make_splits": "splits",
    "make_synthetic_datasets": "synthetic",
}

__all__ = [
    "DATASETS",
    "Augment",
    "SegmentationDataset",
    "Splits",
    "SyntheticDataset",
    "export_synthetic",
    "load_image",
    "load_mask",
    "make_splits",
    "make_synthetic_datasets",
]

if TYPE_CHECKING:
    from .augment import Augment
    from .datasets import SegmentationDataset
    from .images import load_image, load_mask
    from .layout import DATASETS
    from .splits import Splits, make_splits
    from .synthetic import SyntheticDataset, export_synthetic, make_synthetic_datasets


__getattr__, __dir__ = lazy_exports(__name__, {k: f"{__name__}.{m}" for k, m in _EXPORTS.items()})
