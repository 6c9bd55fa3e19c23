"""The table of dataset recipes (what a recipe provides is :mod:`data_download.recipe`)."""

from __future__ import annotations

from . import bus, busi, ham10000, kvasir_instrument
from .recipe import ManualDownloadRequired, Recipe, Remote, extract_limit


def recipes() -> dict[str, Recipe]:
    """name -> recipe for the datasets with images (``gms_splits`` is handled apart)."""
    return {r.name: r for r in (busi.RECIPE, bus.RECIPE, kvasir_instrument.RECIPE, ham10000.RECIPE)}


__all__ = ["ManualDownloadRequired", "Recipe", "Remote", "extract_limit", "recipes"]
