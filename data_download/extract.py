"""Unpacking archives safely.

:func:`safe_extract` unpacks zip and tar archives after checking every member: absolute paths,
``..`` components and links that point outside the target are refused before anything is
written; so are the sizes the members declare (a byte budget for the whole preparation, nested
archives included, and a bound on the expansion ratio), and the bytes actually written are
counted, since headers can lie. :func:`extract_nested` unpacks archives found inside archives.
"""

from __future__ import annotations

import lzma
import posixpath
import shutil
import stat
import tarfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

from tqdm.auto import tqdm

from wavegms.utils.progress import show_bars

_CHUNK = 1 << 20

ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")
LIMIT_FLAG = "--max-extract-gb"
# Dataset archives hold images, which are compressed already: a whole archive that expands
# 20-fold is not a dataset but a decompression bomb. Below the floor no harm can be done.
MAX_RATIO = 20.0
RATIO_FLOOR = 64 << 20


class UnsafeArchiveError(ValueError):
    """An archive member would be written outside the extraction folder."""


class BadArchiveError(ValueError):
    """A file that should be an archive cannot be read as one (damaged, truncated, not one)."""


class ArchiveTooLargeError(UnsafeArchiveError):
    """Extraction would exceed its byte budget, or an archive expands like a decompression bomb."""


def _size(n: int) -> str:
    return f"{n / 1e9:.2f} GB" if n >= 10**9 else f"{n / 1e6:.1f} MB"


@dataclass
class ExtractLimit:
    """What extraction may write: ``max_bytes`` summed over every archive of one preparation
    (nested archives included), and at most ``max_ratio`` times an archive's own size once its
    contents exceed ``RATIO_FLOOR`` (None: no ratio check, for a limit the user set by hand).

    Sizes declared in the archive's headers are checked before anything is written; the bytes
    actually written are counted as well, since headers can lie.
    """

    max_bytes: int = 50 * 10**9
    max_ratio: float | None = MAX_RATIO
    written: int = 0

    def check_declared(self, archive: Path, declared: int) -> None:
        """Refuse ``archive`` (before writing) if its declared contents break a bound."""
        if self.written + declared > self.max_bytes:
            raise ArchiveTooLargeError(
                f"refusing to extract {archive}: its members declare {_size(declared)}, which "
                f"would pass the {_size(self.max_bytes)} limit for this dataset. If the archive "
                f"is genuine, raise the limit with {LIMIT_FLAG} N."
            )
        packed = max(1, archive.stat().st_size)
        ratio = declared / packed
        if self.max_ratio is not None and declared > RATIO_FLOOR and ratio > self.max_ratio:
            raise ArchiveTooLargeError(
                f"refusing to extract {archive}: {_size(packed)} would expand to "
                f"{_size(declared)} ({ratio:.0f}x, more than {self.max_ratio:.0f}x"
                " for image data): it looks like a decompression bomb. If the archive is "
                f"genuine, pass {LIMIT_FLAG} N to allow it."
            )

    def add(self, archive: Path, member: str, n: int) -> None:
        """Count ``n`` bytes about to be written for ``member``; refuse past the budget."""
        self.written += n
        if self.written > self.max_bytes:
            raise ArchiveTooLargeError(
                f"refusing to extract {archive}: member {member!r} takes the extracted data past "
                f"the {_size(self.max_bytes)} limit for this dataset (the archive's headers "
                f"understate its size). If the archive is genuine, raise the limit with "
                f"{LIMIT_FLAG} N."
            )


def is_archive(path: str | Path) -> bool:
    """Whether ``path`` names a zip or tar archive by its suffix."""
    return Path(path).name.lower().endswith(ARCHIVE_SUFFIXES)


def archive_stem(path: str | Path) -> str:
    """``images.tar.gz`` -> ``images``."""
    name = Path(path).name
    for suffix in sorted(ARCHIVE_SUFFIXES, key=len, reverse=True):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return Path(name).stem


def _check_member_name(name: str, archive: Path) -> str:
    """Normalise a member name and refuse those that escape the target folder."""
    norm = name.replace("\\", "/")
    if norm.startswith("/") or (len(norm) > 1 and norm[1] == ":") or norm.startswith("//"):
        raise UnsafeArchiveError(
            f"refusing to extract {archive}: member {name!r} has an absolute path"
        )
    if ".." in norm.split("/"):
        raise UnsafeArchiveError(
            f"refusing to extract {archive}: member {name!r} contains '..' and would be "
            "written outside the target folder"
        )
    return norm


def _check_link(member_name: str, link_target: str, archive: Path, *, hard: bool = False) -> None:
    """Refuse a link whose target lies outside the archive's folder tree.

    A symlink's target is relative to the link's folder; a hard link's to the archive root.
    """
    target = link_target.replace("\\", "/")
    if target.startswith("/"):
        raise UnsafeArchiveError(
            f"refusing to extract {archive}: link {member_name!r} points to absolute path "
            f"{link_target!r}"
        )
    base = "" if hard else posixpath.dirname(member_name)
    resolved = posixpath.normpath(posixpath.join(base, target))
    if resolved == ".." or resolved.startswith("../"):
        raise UnsafeArchiveError(
            f"refusing to extract {archive}: link {member_name!r} points outside the target "
            f"folder ({link_target!r})"
        )


def _check_zip(zf: zipfile.ZipFile, archive: Path) -> None:
    for info in zf.infolist():
        norm = _check_member_name(info.filename, archive)
        if stat.S_ISLNK(info.external_attr >> 16):
            _check_link(norm, zf.read(info).decode("utf-8", "replace"), archive)


def _check_tar(tf: tarfile.TarFile, archive: Path) -> None:
    for member in tf.getmembers():
        norm = _check_member_name(member.name, archive)
        if member.issym():
            _check_link(norm, member.linkname, archive)
        elif member.islnk():
            _check_link(norm, member.linkname, archive, hard=True)
        elif not (member.isfile() or member.isdir()):
            raise UnsafeArchiveError(
                f"refusing to extract {archive}: member {member.name!r} is a device or FIFO"
            )


# What the archive modules raise on damaged data (a CRC error, a truncated stream, ...).
_DAMAGED = (zipfile.BadZipFile, tarfile.TarError, zlib.error, EOFError, lzma.LZMAError)


def _damaged(archive: Path, error: BaseException, member: str | None = None) -> BadArchiveError:
    where = f" (member {member!r})" if member else ""
    return BadArchiveError(
        f"{archive} is not a readable archive{where}: {error}. It is damaged or incomplete: "
        "download it again (or check the file you passed with --source)."
    )


def _extract_zip_member(
    zf: zipfile.ZipFile, info: zipfile.ZipInfo, out: Path, archive: Path, limit: ExtractLimit
) -> None:
    if info.is_dir():
        out.mkdir(parents=True, exist_ok=True)
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    written = 0
    try:
        with zf.open(info) as src, open(out, "wb") as dst:
            while block := src.read(_CHUNK):
                written += len(block)
                if written > info.file_size:
                    raise ArchiveTooLargeError(
                        f"refusing to extract {archive}: member {info.filename!r} holds more "
                        f"data than its header declares ({info.file_size} bytes)"
                    )
                limit.add(archive, info.filename, len(block))
                dst.write(block)
    except BaseException:
        out.unlink(missing_ok=True)
        raise


def safe_extract(
    archive: str | Path,
    target: str | Path,
    *,
    progress: bool = True,
    limit: ExtractLimit | None = None,
) -> Path:
    """Extract a zip or tar(.gz/.bz2/.xz) archive into ``target`` (created); return ``target``.

    Every member is checked before anything is written, and so are the sizes its headers
    declare against ``limit`` (default: :class:`ExtractLimit`); the bytes written are counted.

    Raises:
        UnsafeArchiveError: a member has an absolute path, a ``..`` component, is a link
            pointing outside ``target``, or is a device file (the message names it).
        ArchiveTooLargeError: the contents would pass ``limit`` (an ``UnsafeArchiveError``).
        BadArchiveError: the file is not a readable zip or tar archive, or a member is damaged.
    """
    archive, target = Path(archive), Path(target)
    limit = limit if limit is not None else ExtractLimit()
    target.mkdir(parents=True, exist_ok=True)
    root = target.resolve()
    bar = {"desc": f"extract {archive.name}", "disable": not show_bars(progress), "leave": False}
    if zipfile.is_zipfile(archive):
        member = None
        try:
            with zipfile.ZipFile(archive) as zf:
                _check_zip(zf, archive)
                members = zf.infolist()
                limit.check_declared(archive, sum(i.file_size for i in members))
                for info in tqdm(members, unit="file", **bar):
                    member = info.filename
                    out = (root / _check_member_name(info.filename, archive)).resolve()
                    if not out.is_relative_to(root):  # belt and braces after the name check
                        raise UnsafeArchiveError(
                            f"refusing to extract {archive}: {info.filename!r}"
                        )
                    _extract_zip_member(zf, info, out, archive, limit)
        except _DAMAGED as e:
            raise _damaged(archive, e, member) from e
        except (NotImplementedError, RuntimeError) as e:  # unsupported method, encrypted
            raise BadArchiveError(
                f"cannot extract {archive} (member {member!r}): {e}. Extract it with another "
                "tool and pass the folder with --source."
            ) from e
        return target
    if tarfile.is_tarfile(archive):
        member = None
        try:
            with tarfile.open(archive, "r:*") as tf:
                _check_tar(tf, archive)
                members = tf.getmembers()
                limit.check_declared(archive, sum(m.size for m in members if m.isfile()))
                extract_kwargs = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
                for m in tqdm(members, unit="file", **bar):
                    member = m.name
                    if m.isfile():
                        limit.add(archive, m.name, m.size)  # tarfile writes exactly m.size
                    try:
                        tf.extract(m, root, **extract_kwargs)
                    except tarfile.FilterError as e:  # Python's own "data" filter said no
                        raise UnsafeArchiveError(f"refusing to extract {archive}: {e}") from e
        except _DAMAGED as e:
            raise _damaged(archive, e, member) from e
        return target
    raise BadArchiveError(
        f"{archive} is not a readable archive: neither zip nor tar (damaged, incomplete, or "
        "another kind of file). Download it again, or check the file you passed with --source."
    )


def extract_nested(
    folder: str | Path,
    *,
    progress: bool = True,
    max_depth: int = 3,
    limit: ExtractLimit | None = None,
) -> None:
    """Safely extract archives found inside ``folder`` (e.g. Kvasir-Instrument's
    ``images.tar.gz``), each into a sibling folder named after it, repeating up to
    ``max_depth`` levels; archives nested deeper are left packed, with a note naming them.
    ``limit`` is shared with the caller's extraction so nesting cannot multiply the budget."""
    folder = Path(folder)
    limit = limit if limit is not None else ExtractLimit()
    done: set[Path] = set()

    def pending() -> list[Path]:
        return [
            p
            for p in sorted(folder.rglob("*"))
            if p.is_file() and is_archive(p) and p not in done and not is_junk(p)
        ]

    for _ in range(max_depth):
        found = pending()
        if not found:
            return
        for archive in found:
            target = archive.parent / (archive_stem(archive) + ".extracted")
            safe_extract(archive, target, progress=progress, limit=limit)
            done.add(archive)
    skipped = [str(p.relative_to(folder)) for p in pending()]
    if skipped:
        more = f" and {len(skipped) - 3} more" if len(skipped) > 3 else ""
        shown = ", ".join(skipped[:3]) + more
        print(
            f"note: archives nest deeper than {max_depth} levels; not extracted: {shown}. "
            "If the images are in there, extract them yourself and pass the folder with --source."
        )


def is_junk(path: Path) -> bool:
    """Hidden files and macOS debris (``._x``, ``.DS_Store``, ``__MACOSX/``) that archives carry."""
    return path.name.startswith(".") or "__MACOSX" in path.parts


def remove_tree(path: str | Path) -> None:
    """``shutil.rmtree`` that tolerates a missing folder."""
    shutil.rmtree(path, ignore_errors=True)
