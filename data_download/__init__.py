"""Download and prepare the Wave-GMS datasets: ``python -m data_download <dataset> --root DIR``.

Datasets: ``busi``, ``bus`` (``--source`` only), ``kvasir_instrument``, ``ham10000``, and
``gms_splits`` (the GMS train/test lists). Every dataset is prepared into one layout::

    DATA_DIR/<dataset>/images/<name>.png
    DATA_DIR/<dataset>/masks/<name>.png     single channel, 0/255
    DATA_DIR/<dataset>/info.json            source, counts, classes, licence, citation

This package needs only numpy, Pillow and tqdm (no torch), so it runs anywhere first.
"""

from .download import DownloadError, download
from .extract import UnsafeArchiveError, safe_extract
from .prepare import available, prepare
from .registry import ManualDownloadRequired
from .staging import PreparationError

__all__ = [
    "DownloadError",
    "ManualDownloadRequired",
    "PreparationError",
    "UnsafeArchiveError",
    "available",
    "download",
    "prepare",
    "safe_extract",
]
