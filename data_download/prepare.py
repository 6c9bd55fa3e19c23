"""One call from "nothing" (or an archive you have) to a prepared dataset folder."""

from __future__ import annotations

import tarfile
import tempfile
import zipfile
from pathlib import Path

from . import gms_splits, registry
from .fetch import DownloadError, download, extract_nested, is_archive, remove_tree, safe_extract
from .layout import PreparationError, check_target, stale_partials, write_prepared

TOOL = "data_download 0.1"


def available() -> tuple[str, ...]:
    """Every name ``prepare`` accepts."""
    return (*registry.recipes(), "gms_splits")


def _inside(path: Path, folder: Path) -> bool:
    try:
        return path.resolve().is_relative_to(folder.resolve())
    except OSError:
        return False


def _extract_archives_below(folder: Path, work: Path, progress: bool) -> Path | None:
    """Extract archives found in a user's folder into ``work`` (never into the user's folder)."""
    archives = [
        p
        for p in sorted(folder.rglob("*"))
        if p.is_file() and is_archive(p) and not p.name.startswith(".")
    ]
    if not archives:
        return None
    for archive in archives:
        rel = archive.parent.relative_to(folder)
        safe_extract(archive, work / rel / f"{archive.name}.extracted", progress=progress)
    extract_nested(work, progress=progress)
    return work


def _roots_for(inputs: list[Path], work: Path, progress: bool) -> list[Path]:
    """Folders (and plain files) that the recipe's discovery searches."""
    roots: list[Path] = []
    for i, path in enumerate(inputs):
        if path.is_dir():
            roots.append(path)
            extracted = _extract_archives_below(path, work / f"in{i}", progress)
            if extracted is not None:
                roots.append(extracted)
        elif zipfile.is_zipfile(path) or tarfile.is_tarfile(path):
            out = safe_extract(path, work / f"in{i}", progress=progress)
            extract_nested(out, progress=progress)
            roots.append(out)
        else:
            roots.append(path)  # e.g. a metadata table
    return roots


def prepare(
    dataset: str,
    root: str | Path,
    source: str | Path | None = None,
    *,
    force: bool = False,
    keep_archives: bool = False,
    workers: int | None = None,
    progress: bool = True,
) -> Path:
    """Download (or take from ``source``) and prepare ``dataset`` into ``root/<dataset>``.

    Args:
        dataset: ``busi``, ``bus``, ``kvasir_instrument``, ``ham10000`` or ``gms_splits``.
        root: the data folder (``DATA_DIR``); the dataset goes into ``root/<dataset>``.
        source: an archive (zip, tar, tar.gz) or a folder you already have; no download then.
        force: prepare again even if a complete preparation exists (same dataset only).
        keep_archives: keep downloaded archives in ``root/.downloads`` after success.
        workers: processes for image conversion (default: CPU count, at most 8).

    Returns:
        The prepared folder. Preparing twice is a no-op.

    Raises:
        ManualDownloadRequired: the dataset cannot be downloaded (BUS) and no source was given.
        PreparationError, DownloadError, UnsafeArchiveError: with a message saying what to do.
    """
    data_dir = Path(root).expanduser()
    src = Path(source).expanduser() if source is not None else None
    if src is not None and not src.exists():
        raise PreparationError(f"--source {src} does not exist")
    if dataset == "gms_splits":
        return gms_splits.prepare(data_dir, src, force=force, progress=progress)
    table = registry.recipes()
    if dataset not in table:
        raise PreparationError(
            f"unknown dataset {dataset!r}; choose one of: {', '.join(available())}"
        )
    recipe = table[dataset]
    target = data_dir / dataset
    if src is not None and _inside(src, target):
        raise PreparationError(
            f"--source {src} lies inside the output folder {target}. Move the raw data "
            "elsewhere (e.g. DATA_DIR/raw/) and pass that folder."
        )
    if check_target(data_dir, dataset, force):
        print(f"{dataset} is already prepared in {target}: nothing to do.")
        return target
    for stale in stale_partials(data_dir, dataset):
        print(f"removing {stale}, left by an interrupted run")
        remove_tree(stale)

    downloaded: list[Path] = []
    if src is None:
        remotes = recipe.remote_files()
        for remote in remotes:
            try:
                downloaded.append(
                    download(
                        remote.urls,
                        data_dir / ".downloads" / remote.filename,
                        sha256=remote.sha256,
                        md5=remote.md5,
                        progress=progress,
                    )
                )
            except DownloadError as e:
                if not remote.optional:
                    raise
                print(f"note: optional file {remote.filename} skipped: {e}")
        inputs, where = downloaded, " ".join(r.urls[0] for r in remotes)
    else:
        inputs, where = [src], str(src.resolve())

    data_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{dataset}.extract-", dir=data_dir) as work:
        discovery = recipe.discover(_roots_for(inputs, Path(work), progress))
        n = len(discovery.items)
        if recipe.expected_images and n != recipe.expected_images:
            print(
                f"note: found {n} {dataset} images; the full dataset has {recipe.expected_images}."
            )
        info = {
            "title": recipe.title,
            "source": where,
            "homepage": recipe.homepage,
            "licence": recipe.licence,
            "citation": recipe.citation,
            "prepared_by": TOOL,
        }
        out = write_prepared(
            data_dir,
            dataset,
            discovery,
            info,
            workers=workers,
            progress=progress,
            replace=force and target.exists(),
        )
    if downloaded and not keep_archives:
        for path in downloaded:
            path.unlink(missing_ok=True)
    print(f"{dataset}: {n} images prepared in {out}")
    return out
