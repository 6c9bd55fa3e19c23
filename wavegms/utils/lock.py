"""One writer per run folder: :func:`claim_folder` holds ``RUN_DIR/run.lock`` for a run's life.

Checking "is this folder free?" and then writing races when two trainings start into one
folder at once: both pass the check. The claim is instead one atomic step, an exclusive,
non-blocking lock on ``run.lock`` (``flock`` on POSIX, ``msvcrt.locking`` on Windows). The
operating system drops it when the holder dies, so a lock file left by a killed run
(``kill -9``) is simply taken over. The file holds the holder's PID, for the message. Only the
standard library is imported.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None
    import msvcrt

LOCK_NAME = "run.lock"


class FolderInUseError(RuntimeError):
    """Another live process holds the folder."""


@contextmanager
def claim_folder(folder: str | Path) -> Iterator[Path]:
    """Hold ``folder`` (created if needed) for the ``with`` block; yields the folder.

    Raises :class:`FolderInUseError` naming the folder and the holder's PID when another live
    process holds it. On exit the lock file is removed, and so is the folder when this claim
    created it and nothing else was written into it.
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise NotADirectoryError(f"{folder} is a file: give a folder (new or empty) as --out.")
    created = not folder.exists()
    folder.mkdir(parents=True, exist_ok=True)
    lock = folder / LOCK_NAME
    fd = None
    try:
        fd = _acquire(lock, folder)
        yield folder
    finally:
        if fd is not None:
            if fcntl is not None:
                lock.unlink(missing_ok=True)  # before releasing: a later claim makes a new file
            os.close(fd)
            lock.unlink(missing_ok=True)  # Windows: an open file cannot be removed
        if created:
            with suppress(OSError):  # only if empty: a failed start leaves no folder behind
                folder.rmdir()


def _acquire(lock: Path, folder: Path) -> int:
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        else:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
    except OSError:  # BlockingIOError (flock) or PermissionError (msvcrt): held elsewhere
        try:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "?"
        except OSError:  # Windows locks are mandatory: the holder's PID cannot be read
            holder = "?"
        os.close(fd)
        raise FolderInUseError(_in_use(folder, holder)) from None
    if fcntl is not None:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
    return fd


def _in_use(folder: Path, holder: str) -> str:
    return (
        f"{folder} is in use by another training run (process {holder}, see "
        f"{folder / LOCK_NAME}): wait for it to finish, or choose another --out."
    )


__all__ = ["LOCK_NAME", "FolderInUseError", "claim_folder"]
