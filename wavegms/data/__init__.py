"""Data for Wave-GMS: prepared datasets, splits, a synthetic dataset, and augmentation.

Real datasets are prepared once with ``python -m data_download <dataset> --root DATA_DIR``
into ``DATA_DIR/<dataset>/{images,masks}/<name>.png`` + ``info.json``;
:class:`SegmentationDataset` reads that layout. :class:`SyntheticDataset` needs no download
and is the default of the course's quick mode, the demo and the tests.

Items of every dataset are dicts: ``image`` float32 ``[3, S, S]`` in [0, 1], ``mask`` float32
``[1, S, S]`` in {0, 1}, ``name`` str.
"""

from .augment import Augment
from .datasets import DATASETS, SegmentationDataset
from .io import load_image, load_mask
from .splits import Splits, make_splits
from .synthetic import SyntheticDataset, make_synthetic_datasets

__all__ = [
    "DATASETS",
    "Augment",
    "SegmentationDataset",
    "Splits",
    "SyntheticDataset",
    "load_image",
    "load_mask",
    "make_splits",
    "make_synthetic_datasets",
]
