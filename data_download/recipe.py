"""What every dataset recipe provides (the table of recipes is :mod:`data_download.registry`)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from .extract import LIMIT_FLAG, ExtractLimit
from .staging import Discovery


@dataclass(frozen=True)
class Remote:
    """A file to download: where from (mirrors in order), its name, its checksum if known."""

    filename: str
    urls: tuple[str, ...]
    sha256: str | None = None
    md5: str | None = None
    optional: bool = False  # e.g. metadata that only adds classes


@dataclass(frozen=True)
class Recipe:
    """How to obtain and read one dataset.

    ``remote_files`` returns what to download (it may ask a web API, as for Dataverse), or
    raises :class:`ManualDownloadRequired` when the data cannot be downloaded by us.
    ``discover`` finds the raw items below the given folders (extracted archives, or the
    user's ``--source`` folder). ``extracted_mb`` is roughly how large the raw data is once
    unpacked: it bounds what extraction may write (:func:`extract_limit`). ``name_pattern``
    matches the dataset's image file stems (mask suffixes stripped), so that a folder of
    another dataset is recognised and refused with the right command.
    """

    name: str
    title: str
    homepage: str
    licence: str
    citation: str
    remote_files: Callable[[], Sequence[Remote]]
    discover: Callable[[Sequence[Path]], Discovery]
    expected_images: int | None = None
    extracted_mb: int = 1000
    name_pattern: str | None = None


def extract_limit(recipe_mb: int, max_gb: float | None = None) -> ExtractLimit:
    """The extraction bound of a preparation: 3x the dataset's known size plus 1 GB of slack
    (mirrors differ, archives nest), checked with the bomb ratio of :class:`ExtractLimit`; a
    limit given by hand (``--max-extract-gb``) replaces both, the user vouching for the data."""
    if max_gb is not None:
        if not (isinstance(max_gb, (int, float)) and math.isfinite(max_gb) and max_gb > 0):
            raise ValueError(
                f"{LIMIT_FLAG} must be a positive number of GB (e.g. 20), got {max_gb!r}."
            )
        return ExtractLimit(max_bytes=int(max_gb * 1e9), max_ratio=None)
    return ExtractLimit(max_bytes=3 * recipe_mb * 10**6 + 10**9)


class ManualDownloadRequired(RuntimeError):
    """The dataset is not publicly downloadable; the message explains how to obtain it."""
