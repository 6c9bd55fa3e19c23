"""How a preparation reaches the prepared layout (:mod:`wavegms.data.layout`) atomically.

A preparation writes everything into ``DATA_DIR/.<dataset>.partial`` and swaps that folder in
as ``DATA_DIR/<dataset>`` as its very last step (:func:`wavegms.utils.atomic.commit_folder`),
so an interrupted run never leaves a folder that looks complete, and a replaced preparation
survives until its successor is complete. ``info.json`` is written last inside the staging
folder.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from wavegms.data.images import load_image, read_mask, save_image_png, save_mask_png
from wavegms.data.layout import IMAGES, INFO, LAYOUT_VERSION, MASKS, read_info, write_info
from wavegms.utils.atomic import commit_folder
from wavegms.utils.progress import show_bars

from .pool import process_pool


class PreparationError(RuntimeError):
    """Preparation cannot go on; the message says why and what to do."""


@dataclass(frozen=True)
class RawItem:
    """One image of a raw dataset: where its files are and what it will be called."""

    name: str
    image: Path
    masks: tuple[Path, ...]  # several files are merged with OR (BUSI)
    cls: str | None = None


@dataclass
class Discovery:
    """What a dataset recipe found in a source folder."""

    items: list[RawItem]
    extra_info: dict[str, Any] = field(default_factory=dict)


def _read_info(folder: Path) -> dict[str, Any]:
    # An unreadable info.json counts as none: such a folder is not one this tool can vouch for.
    try:
        return read_info(folder)
    except (OSError, ValueError):
        return {}


def is_complete(folder: Path, dataset: str) -> bool:
    """Whether ``folder`` holds a complete preparation of ``dataset`` (counts match info.json)."""
    info = _read_info(folder)
    if not info or info.get("dataset") != dataset:
        return False
    counts = info.get("counts")
    expected = counts.get("images") if isinstance(counts, dict) else None
    try:
        n_images = sum(1 for p in (folder / IMAGES).iterdir() if p.suffix == ".png")
        n_masks = sum(1 for p in (folder / MASKS).iterdir() if p.suffix == ".png")
    except OSError:
        return False
    return expected == n_images == n_masks


def check_target(data_dir: Path, dataset: str, force: bool = False) -> bool:
    """Decide whether ``data_dir/<dataset>`` may be (re)written.

    Returns True when it is already complete (and ``force`` is off): nothing to do.

    Raises:
        PreparationError: ``data_dir`` is itself a prepared dataset folder; the target holds a
            different dataset, or files that are not a preparation; or it is damaged and
            ``force`` is off.
    """
    own = _read_info(data_dir)
    if own and "dataset" in own:
        raise PreparationError(
            f"{data_dir} is itself a prepared '{own['dataset']}' folder. --root must be the "
            f"parent data folder (e.g. --root {data_dir.parent}); datasets go into "
            "<root>/<dataset>/."
        )
    target = data_dir / dataset
    if not target.exists():
        return False
    if target.is_dir() and not any(target.iterdir()):
        target.rmdir()
        return False
    info = _read_info(target)
    if "dataset" not in info:
        raise PreparationError(
            f"{target} exists but has no info.json: it is not a folder this tool prepared, so "
            "it is left untouched. Move it away (if it holds the raw download, pass it with "
            f"--source instead) or choose another --root."
        )
    if info["dataset"] != dataset:
        raise PreparationError(
            f"{target} holds a prepared '{info['dataset']}' dataset, not '{dataset}' "
            f"(see {target / INFO}); refusing to overwrite it. Choose another --root."
        )
    if is_complete(target, dataset):
        return not force
    if not force:
        raise PreparationError(
            f"{target} is a damaged '{dataset}' preparation (file counts differ from "
            f"{INFO}). Run the same command with --force to prepare it again."
        )
    return False


def _convert(item: RawItem, staging: str) -> dict[str, Any]:
    """Read one raw item, merge its masks, write the two PNGs; runs in worker processes."""
    image = _read_source(load_image, item.image)
    read = [(path, *_read_source(read_mask, path)) for path in item.masks]
    mask = None
    notes = [f"{_relative_name(path)} ({note})" for path, _, note in read if note]
    for path, m, _ in read:
        if m.shape != image.shape[:2]:
            raise PreparationError(
                f"size mismatch: image {item.image} is {image.shape[1]}x{image.shape[0]} but "
                f"mask {path} is {m.shape[1]}x{m.shape[0]} (width x height)"
            )
        mask = m if mask is None else (mask | m)
    if mask is None:
        raise PreparationError(f"no mask file for image {item.image}")
    save_image_png(image, Path(staging) / IMAGES / f"{item.name}.png")
    save_mask_png(mask, Path(staging) / MASKS / f"{item.name}.png")
    return {
        "height": int(image.shape[0]),
        "width": int(image.shape[1]),
        "foreground": float(mask.mean()),
        **({"mask_values": "; ".join(notes)} if notes else {}),
    }


def _read_source(load: Callable[[Path], Any], path: Path) -> Any:
    """``load(path)`` for a raw source file, whose problems re-preparing would not cure."""
    try:
        return load(path)
    except ValueError as e:
        if e.__cause__ is None:  # our own message (e.g. over the pixel limit) says what to do
            raise PreparationError(str(e)) from None
        raise PreparationError(
            f"cannot read {path}: {e.__cause__}. Fix or replace that file in the source "
            "(or get a fresh copy of the dataset)."
        ) from None


def _check_names(items: Sequence[RawItem]) -> None:
    seen: dict[str, RawItem] = {}
    for item in items:
        if item.name in seen:
            raise PreparationError(
                f"two source images map to the name {item.name!r}: {seen[item.name].image} and "
                f"{item.image}. Does the source hold the dataset twice?"
            )
        if not item.name or "/" in item.name or item.name.startswith("."):
            raise PreparationError(f"unusable item name {item.name!r} for {item.image}")
        seen[item.name] = item


def default_workers() -> int:
    """Processes used for conversion: the machine's cores, at most 8."""
    return max(1, min(8, os.cpu_count() or 1))


def write_prepared(
    data_dir: Path,
    dataset: str,
    discovery: Discovery,
    info: dict[str, Any],
    *,
    workers: int | None = None,
    progress: bool = True,
    replace: bool = False,
) -> Path:
    """Convert ``discovery.items`` into ``data_dir/<dataset>`` atomically; return that folder.

    ``info`` (source, licence, citation, ...) is completed with the dataset name, counts,
    classes and per-item records, and written as ``info.json``. ``replace`` swaps out an
    existing preparation of the same dataset (``--force``); without it an existing folder is
    refused (``FileExistsError``) and left untouched.
    """
    items = sorted(discovery.items, key=lambda it: it.name)
    if not items:
        raise PreparationError(f"no {dataset} images found in the source")
    _check_names(items)

    def write(staging: Path) -> None:
        (staging / IMAGES).mkdir()
        (staging / MASKS).mkdir()
        records = _convert_all(items, staging, workers or default_workers(), progress, dataset)
        write_info(staging, _full_info(dataset, items, records, info, discovery.extra_info))

    return commit_folder(data_dir / dataset, write, replace=replace)


def _full_info(
    dataset: str,
    items: Sequence[RawItem],
    records: Sequence[dict[str, Any]],
    info: dict[str, Any],
    extra_info: dict[str, Any],
) -> dict[str, Any]:
    """``info`` completed with the dataset name, counts, classes and per-item records."""
    classes = {it.name: it.cls for it in items if it.cls is not None}
    by_class: dict[str, int] = {}
    for cls in classes.values():
        by_class[cls] = by_class.get(cls, 0) + 1
    return {
        "dataset": dataset,
        "layout_version": LAYOUT_VERSION,
        **info,
        "counts": {
            "images": len(items),
            "masks": len(items),
            **({"by_class": dict(sorted(by_class.items()))} if by_class else {}),
        },
        "classes": classes or None,
        **extra_info,
        "items": {
            it.name: {
                "source_image": _relative_name(it.image),
                "source_masks": [_relative_name(m) for m in it.masks],
                **rec,
            }
            for it, rec in zip(items, records, strict=True)
        },
    }


def _relative_name(path: Path) -> str:
    """The last two components of a source path: enough to trace an item, no local prefix."""
    return "/".join(path.parts[-2:])


def _convert_all(
    items: Sequence[RawItem], staging: Path, workers: int, progress: bool, dataset: str
) -> list[dict[str, Any]]:
    bar = tqdm(
        total=len(items), desc=f"prepare {dataset}", unit="img", disable=not show_bars(progress)
    )
    try:
        if workers <= 1 or len(items) < 32:
            out = []
            for it in items:
                out.append(_convert(it, str(staging)))
                bar.update()
            return out
        pool = process_pool(workers)
        try:
            futures = [pool.submit(_convert, it, str(staging)) for it in items]
            out = []
            for fut in futures:
                out.append(fut.result())
                bar.update()
            return out
        finally:
            # On an error, do not wait for hundreds of queued conversions to finish.
            pool.shutdown(wait=True, cancel_futures=True)
    finally:
        bar.close()
