"""What every dataset recipe provides (the table of recipes is :mod:`data_download.registry`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from .layout import Discovery


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
    user's ``--source`` folder).
    """

    name: str
    title: str
    homepage: str
    licence: str
    citation: str
    remote_files: Callable[[], Sequence[Remote]]
    discover: Callable[[Sequence[Path]], Discovery]
    expected_images: int | None = None


class ManualDownloadRequired(RuntimeError):
    """The dataset is not publicly downloadable; the message explains how to obtain it."""
