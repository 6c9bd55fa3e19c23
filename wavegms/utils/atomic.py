"""Atomic writes: a file or a folder is either its old content or its new content, never half
of each.

Every file the package or ``data_download`` writes goes through :func:`atomic_write` (or
:func:`staged_file`, for a writer that wants a path): the bytes go to a temporary sibling, are
flushed to disk, and the sibling is moved into place with ``os.replace``. A folder that must
change as a whole (a checkpoint, a prepared dataset) goes through :func:`commit_folder`. Only
the standard library is imported, so preparing data stays light.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any


def current_umask() -> int:
    """The process's umask now (it may change after import, e.g. in a notebook or a test)."""
    try:  # Linux states it without changing it (setting it races with other threads)
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def staged_file(path: str | Path, suffix: str = ".tmp") -> Iterator[Path]:
    """A temporary sibling of ``path`` (``.NAME.XXXX`` + ``suffix``) for the block to write.

    When the block ends normally the file gets the usual permissions (``0666`` less the umask)
    and is moved to ``path``; on any error (Ctrl-C included) it is removed and ``path`` is
    untouched. The parent folder is created.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~current_umask())  # mkstemp makes 0600 files: the usual ones
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write(path: str | Path, write: Callable[[IO[bytes]], Any]) -> Path:
    """Call ``write(binary_file)`` on a temporary sibling of ``path``, then move it to ``path``.

    The parent folder is created. On any error (Ctrl-C included) the temporary file is removed
    and ``path`` is untouched. Returns ``path``.
    """
    with staged_file(path) as tmp, open(tmp, "wb") as file:
        write(file)
        file.flush()
        os.fsync(file.fileno())
    return Path(path)


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (figures, other binary files)."""
    return atomic_write(path, lambda file: file.write(data))


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` (UTF-8) atomically."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | Path, obj: Any, indent: int = 2) -> Path:
    """Write ``obj`` as JSON (and a final newline) to ``path`` atomically."""
    return atomic_write_text(path, json.dumps(obj, indent=indent) + "\n")


# A folder is committed through siblings named after it: written as .NAME.partial, renamed
# .NAME.ready once complete, then swapped in, the previous version moved aside to .NAME.old for
# the moment between the two renames. Whenever a process is killed, the previous folder or the
# new one is complete under one of these names, and recover_folder puts it back in place.
FOLDER_STAGES = ("partial", "ready", "old")


def staging_folder(target: str | Path, stage: str) -> Path:
    """The sibling ``.NAME.<stage>`` of ``target`` (``stage`` in :data:`FOLDER_STAGES`)."""
    target = Path(target)
    return target.with_name(f".{target.name}.{stage}")


def commit_folder(
    target: str | Path, write: Callable[[Path], Any], *, replace: bool = True
) -> Path:
    """Have ``write(folder)`` fill a new folder, then put it at ``target`` in one step.

    ``write`` gets an empty folder beside ``target``, created with the usual permissions
    (``0777`` less the umask). A reader never sees a half-written ``target``: until the swap it
    sees the previous version (if any), then the new one. On an error in ``write`` (Ctrl-C
    included) the new folder is removed and ``target`` is untouched; after a kill at any point
    :func:`recover_folder` (called here first, for what an earlier run left) restores a
    complete version. ``replace=False`` refuses (``FileExistsError``) to replace an existing
    ``target``. Returns ``target``.
    """
    target = Path(target)
    recover_folder(target)
    _refuse_existing(target, replace)
    partial = staging_folder(target, "partial")
    partial.parent.mkdir(parents=True, exist_ok=True)
    partial.mkdir()
    try:
        write(partial)
        _refuse_existing(target, replace)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    os.replace(partial, staging_folder(target, "ready"))  # complete from here on
    _install_ready(target)
    return target


def recover_folder(target: str | Path) -> list[Path]:
    """Finish or undo a :func:`commit_folder` of ``target`` that a kill cut short, and remove
    its staging folders; returns the staging folders removed.

    A complete new version (``.NAME.ready``) is swapped in; if there is none and ``target`` is
    missing, the previous version (``.NAME.old``) is put back. Only one process may commit
    ``target`` at a time (a run folder's lock, for example).
    """
    target = Path(target)
    if staging_folder(target, "ready").is_dir():
        _install_ready(target)  # the new version was complete: the swap was cut short
    elif not target.exists() and staging_folder(target, "old").is_dir():
        os.replace(staging_folder(target, "old"), target)
    removed = []
    for stage in FOLDER_STAGES:
        folder = staging_folder(target, stage)
        if folder.exists():
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


def _install_ready(target: Path) -> None:
    ready, old = staging_folder(target, "ready"), staging_folder(target, "old")
    if target.exists():
        shutil.rmtree(old, ignore_errors=True)
        os.replace(target, old)
    os.replace(ready, target)
    shutil.rmtree(old, ignore_errors=True)


def _refuse_existing(target: Path, replace: bool) -> None:
    if not replace and target.exists():
        raise FileExistsError(f"{target} already exists; it was left untouched.")


__all__ = [
    "FOLDER_STAGES",
    "atomic_write",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "commit_folder",
    "current_umask",
    "recover_folder",
    "staged_file",
    "staging_folder",
]
