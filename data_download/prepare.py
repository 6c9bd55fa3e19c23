"""One call from "nothing" (or an archive you have) to a prepared dataset folder."""

from __future__ import annotations

import json
import re
import tarfile
import tempfile
import zipfile
from pathlib import Path

from wavegms.utils.atomic import recover_folder

from . import gms_splits, registry
from .discover import dominant_pattern
from .download import DownloadError, download
from .extract import (
    BadArchiveError,
    ExtractLimit,
    archive_stem,
    extract_nested,
    is_archive,
    remove_tree,
    safe_extract,
)
from .recipe import Recipe
from .staging import (
    INFO,
    Discovery,
    PreparationError,
    check_target,
    write_prepared,
)

TOOL = "data_download 0.1"
EXTRACT_PREFIX = ".{dataset}.extract-"  # a temporary folder in DATA_DIR; stale ones are removed
_SHOWN = 3  # file names quoted in a warning


def available() -> tuple[str, ...]:
    """Every name ``prepare`` accepts."""
    return (*registry.recipes(), "gms_splits")


def _inside(path: Path, folder: Path) -> bool:
    try:
        return path.resolve().is_relative_to(folder.resolve())
    except OSError:
        return False


def _is_archive_file(path: Path) -> bool:
    """An archive by its name, or by its content whatever it is called."""
    return is_archive(path) or zipfile.is_zipfile(path) or tarfile.is_tarfile(path)


class _Sources:
    """Extracts the inputs into ``work`` and remembers which archive each folder came from,
    so that a problem with an extracted file is reported as ``archive, member path``."""

    def __init__(self, work: Path, limit: ExtractLimit, progress: bool) -> None:
        self.work, self.limit, self.progress = work, limit, progress
        self.origin: dict[Path, Path] = {}  # extraction folder -> the archive it came from

    def _extract(self, archive: Path, target: Path) -> Path:
        self.origin[target] = archive
        safe_extract(archive, target, progress=self.progress, limit=self.limit)
        extract_nested(target, progress=self.progress, limit=self.limit)
        return target

    def roots(self, inputs: list[Path]) -> list[Path]:
        """Folders (and plain files) that the recipe's discovery searches."""
        roots: list[Path] = []
        for i, path in enumerate(inputs):
            if path.is_dir():
                roots.append(path)
                # Archives inside a user's folder go to ``work``, never into the user's folder.
                archives = [
                    p
                    for p in sorted(path.rglob("*"))
                    if p.is_file() and is_archive(p) and not p.name.startswith(".")
                ]
                for archive in archives:
                    rel = archive.parent.relative_to(path)
                    self._extract(archive, self.work / f"in{i}" / rel / f"{archive.name}.extracted")
                if archives:
                    roots.append(self.work / f"in{i}")
            elif _is_archive_file(path):
                roots.append(self._extract(path, self.work / f"in{i}"))
            else:
                roots.append(path)  # e.g. a metadata table
        return roots

    def describe(self, path: Path) -> str:
        """``path``, or ``ARCHIVE, member M`` (repeated for nested archives) when extracted."""
        for folder in path.parents:
            if folder in self.origin:
                archive = self.origin[folder]
            elif folder.name.endswith(".extracted") and folder.is_relative_to(self.work):
                stem = folder.name.removesuffix(".extracted")
                archive = next(
                    (p for p in folder.parent.iterdir() if p.is_file() and archive_stem(p) == stem),
                    None,
                )
                if archive is None:
                    continue
            else:
                continue
            member = path.relative_to(folder).as_posix()
            return f"{self.describe(archive)}, member {member}"
        return str(path)

    def explain_all(self, message: str) -> str:
        """``message`` with every path inside the extraction folder named by archive and member."""
        inside = re.compile(re.escape(str(self.work)) + r"[^\s,;'\"()]*")

        def named(match: re.Match) -> str:
            path = match.group(0)
            stripped = path.rstrip(".")  # a path may end a sentence
            return self.describe(Path(stripped)) + path[len(stripped) :]

        return inside.sub(named, message)

    def explain(self, message: str, paths: list[Path]) -> str:
        """``message`` with the temporary paths of ``paths`` replaced by archive and member."""
        for path in sorted(paths, key=lambda p: len(str(p)), reverse=True):
            if path.is_relative_to(self.work) and str(path) in message:
                message = message.replace(str(path), self.describe(path))
        return message


def _check_root(data_dir: Path) -> None:
    if data_dir.exists() and not data_dir.is_dir():
        raise PreparationError(
            f"--root {data_dir} is a file, not a folder. Pass a folder (it is created if "
            "missing), e.g. --root data."
        )


def _refuse_other_dataset(dataset: str, roots: list[Path], data_dir: Path, src: Path) -> None:
    """A source whose file names follow another dataset's pattern is that dataset."""
    table = registry.recipes()
    patterns = {name: r.name_pattern for name, r in table.items() if r.name_pattern}
    found, examples = dominant_pattern(roots, patterns)
    if found and found != dataset:
        raise PreparationError(
            f"{src} looks like {found.upper()} ({', '.join(examples)} ...), not {dataset}: "
            f"prepare it with: python -m data_download {found} --root {data_dir} --source {src}"
        )


def _warn_unusual_masks(out: Path, dataset: str) -> None:
    """One line naming the source masks that were not 0/1 or 0/255 (recorded in info.json)."""
    items = json.loads((out / INFO).read_text(encoding="utf-8"))["items"]
    odd = [rec["mask_values"] for rec in items.values() if "mask_values" in rec]
    if odd:
        more = f" and {len(odd) - _SHOWN} more" if len(odd) > _SHOWN else ""
        print(
            f"warning: {len(odd)} of {len(items)} {dataset} masks are not 0/1 or 0/255 and were "
            "binarised by the rule in data_download/README.md (Masks): "
            f"{'; '.join(odd[:_SHOWN])}{more}. Check {out / 'masks'}."
        )


def prepare(
    dataset: str,
    root: str | Path,
    source: str | Path | None = None,
    *,
    force: bool = False,
    keep_archives: bool = False,
    workers: int | None = None,
    progress: bool = True,
    max_extract_gb: float | None = None,
) -> Path:
    """Download (or take from ``source``) and prepare ``dataset`` into ``root/<dataset>``.

    Args:
        dataset: ``busi``, ``bus``, ``kvasir_instrument``, ``ham10000`` or ``gms_splits``.
        root: the data folder (``DATA_DIR``); the dataset goes into ``root/<dataset>``.
        source: an archive (zip, tar, tar.gz) or a folder you already have; no download then.
        force: prepare again even if a complete preparation exists (same dataset only).
        keep_archives: keep downloaded archives in ``root/.downloads`` after success.
        workers: processes for image conversion (default: CPU count, at most 8).
        max_extract_gb: the most that extracting archives may write, in GB; default: from
            the dataset's known size, with a bound on the compression ratio.

    Returns:
        The prepared folder. Preparing twice is a no-op.

    Raises:
        ManualDownloadRequired: the dataset cannot be downloaded (BUS) and no source was given.
        PreparationError, DownloadError, UnsafeArchiveError, BadArchiveError: with a message
            saying what to do. OSError: the data folder cannot be written.
    """
    data_dir = Path(root).expanduser()
    src = Path(source).expanduser() if source is not None else None
    if src is not None and not src.exists():
        raise PreparationError(f"--source {src} does not exist")
    _check_root(data_dir)
    if dataset == "gms_splits":
        limit = registry.extract_limit(1000, max_extract_gb)
        return gms_splits.prepare(data_dir, src, force=force, progress=progress, limit=limit)
    recipe = _recipe(dataset)
    limit = registry.extract_limit(recipe.extracted_mb, max_extract_gb)  # checked before a download
    target = data_dir / dataset
    if src is not None and _inside(src, target):
        raise PreparationError(
            f"--source {src} lies inside the output folder {target}. Move the raw data "
            "elsewhere (e.g. DATA_DIR/raw/) and pass that folder."
        )
    _tidy(data_dir, dataset)
    if check_target(data_dir, dataset, force):
        print(f"{dataset} is already prepared in {target}: nothing to do.")
        return target
    downloaded: list[Path] = []  # deleted after success, unless keep_archives
    if src is None:
        downloaded, where = _download(recipe, data_dir, progress)
        inputs = downloaded
    else:
        inputs, where = [_checked_source(src)], str(src.resolve())

    data_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(
        prefix=EXTRACT_PREFIX.format(dataset=dataset), dir=data_dir
    ) as work:
        sources = _Sources(Path(work), limit, progress)
        roots = _extract(sources, inputs, downloaded)
        try:
            if src is not None:
                _refuse_other_dataset(dataset, roots, data_dir, src)
            discovery = _discover(recipe, roots)
        except PreparationError as e:
            # The extraction folder is deleted on the way out: name files as the archive has them.
            raise PreparationError(sources.explain_all(str(e))) from None
        info = _provenance(recipe, where)
        replace = force and target.exists()
        out = _write(data_dir, recipe, discovery, info, sources, workers, progress, replace)
    _warn_unusual_masks(out, dataset)
    if not keep_archives:
        for path in downloaded:
            path.unlink(missing_ok=True)
    print(f"{dataset}: {len(discovery.items)} images prepared in {out}")
    return out


# ---- the steps of prepare(), in order --------------------------------------------------------


def _recipe(dataset: str) -> Recipe:
    table = registry.recipes()
    if dataset not in table:
        raise PreparationError(
            f"unknown dataset {dataset!r}; choose one of: {', '.join(available())}"
        )
    return table[dataset]


def _tidy(data_dir: Path, dataset: str) -> None:
    """Finish or undo what a hard-killed run left: a preparation cut short while it was being
    swapped in (:func:`wavegms.utils.atomic.recover_folder`), staging and extraction folders."""
    stale = recover_folder(data_dir / dataset)
    if data_dir.is_dir():
        extracts = sorted(data_dir.glob(EXTRACT_PREFIX.format(dataset=dataset) + "*"))
        for folder in extracts:
            remove_tree(folder)
        stale += extracts
    for folder in stale:
        print(f"removed {folder}, left by an interrupted run")


def _download(recipe: Recipe, data_dir: Path, progress: bool) -> tuple[list[Path], str]:
    """The recipe's files, downloaded into ``DATA_DIR/.downloads``, and where they came from."""
    remotes = recipe.remote_files()
    downloaded: list[Path] = []
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
    return downloaded, " ".join(r.urls[0] for r in remotes)


def _checked_source(src: Path) -> Path:
    if src.is_file() and not _is_archive_file(src):
        raise BadArchiveError(
            f"--source {src} is neither a folder nor a zip or tar archive. Pass the "
            "dataset's archive or the folder it was extracted to."
        )
    return src


def _extract(sources: _Sources, inputs: list[Path], downloaded: list[Path]) -> list[Path]:
    """The folders to discover images in; a damaged download is deleted, to be fetched again."""
    try:
        return sources.roots(inputs)
    except BadArchiveError as e:
        bad = [p for p in downloaded if str(p) in str(e)]
        if not bad:
            raise
        for path in bad:  # ours, in DATA_DIR/.downloads: a fresh download is the cure
            path.unlink(missing_ok=True)
        raise BadArchiveError(
            f"{e} The downloaded file was deleted: run the same command again to download "
            "it afresh."
        ) from None


def _discover(recipe: Recipe, roots: list[Path]) -> Discovery:
    discovery = recipe.discover(roots)
    n, expected = len(discovery.items), recipe.expected_images
    if expected and n != expected:
        print(f"note: found {n} {recipe.name} images; the full dataset has {expected}.")
    return discovery


def _provenance(recipe: Recipe, where: str) -> dict[str, str]:
    """What ``info.json`` says of the data's origin (``where``: the URLs or the source path)."""
    return {
        "title": recipe.title,
        "source": where,
        "homepage": recipe.homepage,
        "licence": recipe.licence,
        "citation": recipe.citation,
        "prepared_by": TOOL,
    }


def _write(
    data_dir: Path,
    recipe: Recipe,
    discovery: Discovery,
    info: dict[str, str],
    sources: _Sources,
    workers: int | None,
    progress: bool,
    replace: bool,
) -> Path:
    """:func:`~data_download.staging.write_prepared`, naming a bad file by archive and member."""
    try:
        return write_prepared(
            data_dir,
            recipe.name,
            discovery,
            info,
            workers=workers,
            progress=progress,
            replace=replace,
        )
    except PreparationError as e:
        paths = [p for it in discovery.items for p in (it.image, *it.masks)]
        message = sources.explain(str(e), paths)
        if message == str(e):
            raise
        raise PreparationError(
            message + " The file came out of an archive: get a fresh copy of the archive "
            "(a downloaded one is kept in DATA_DIR/.downloads; delete it to download it "
            "again), or extract it, fix or remove that file, and pass the folder with --source."
        ) from None
