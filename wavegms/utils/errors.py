"""One line for an error a user can fix: what failed, on which file, and what to do."""

from __future__ import annotations

import errno
from pathlib import Path

_OS_HINTS = {
    errno.ENOSPC: "the disk is full: free some disk space and run again",
    errno.EDQUOT: "the disk quota is used up: free some disk space and run again",
    errno.EACCES: "no permission: check who may read or write there, or choose another {folder}",
    errno.EPERM: "not permitted: check who may read or write there, or choose another {folder}",
    errno.EROFS: "read-only file system: choose another {folder}",
    errno.ENOTDIR: "a file is where a folder is expected: choose another path",
    errno.EISDIR: "a folder is where a file is expected: move it or choose another path",
    errno.EEXIST: "a file is in the way: choose another path",
}


def error_line(
    error: BaseException, where: str | Path | None = None, option: str = "folder"
) -> str:
    """``error`` as one line. An ``OSError`` from the system (a full disk, a read-only or
    missing folder) names its file (or ``where``) and says what to do; the package's own
    messages already do, and are only joined onto one line. ``option`` is what the hints tell
    the user to choose another of (e.g. ``--root``)."""
    if isinstance(error, OSError) and error.strerror:
        files = " -> ".join(str(f) for f in (error.filename, error.filename2) if f)
        files = files or (str(where) if where else "")
        hint = _OS_HINTS.get(error.errno, "check the path and its permissions")
        hint = hint.format(folder=option)
        message = f"{error.strerror}" + (f": {files}" if files else "") + f" ({hint})"
    else:
        message = str(error)
    return " ".join(message.split())  # one line, however the message was wrapped


_READ_HINTS = {
    errno.EACCES: "no permission to read it: make it readable (chmod) or ask its owner",
    errno.EPERM: "no permission to read it: make it readable (chmod) or ask its owner",
    errno.ENOENT: "it does not exist: check the path",
    errno.EISDIR: "it is a folder, not a file: give the file inside it",
    errno.EIO: "the disk could not read it: copy the file again from a good source",
}


def cannot_read(error: OSError, path: str | Path) -> OSError:
    """``error``, raised when reading ``path``, as an ``OSError`` of the same kind whose one
    line names the file and says what to do for reading (``error_line``'s hints are written
    for folders the command writes to)."""
    hint = _READ_HINTS.get(error.errno, "check the path and its permissions")
    reason = error.strerror or " ".join(str(error).split())
    return type(error)(f"cannot read {path}: {reason} ({hint})")


def read_bytes(path: str | Path) -> bytes:
    """The bytes of ``path``; an ``OSError`` says in one line why it could not be read."""
    try:
        return Path(path).read_bytes()
    except OSError as error:
        raise cannot_read(error, path) from None
