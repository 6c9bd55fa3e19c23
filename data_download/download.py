"""Downloading: resumable, verified and retried.

:func:`download` writes to ``<file>.part``, resumes it with an HTTP ``Range`` request after an
interruption, retries transient failures with exponential backoff, verifies a checksum when one
is known, and renames the file into place only when it is complete and verified.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from tqdm.auto import tqdm

from wavegms.utils.progress import show_bars

USER_AGENT = "wavegms-data-download/0.1 (+https://arxiv.org/abs/2510.03216)"
TRANSIENT_HTTP = {408, 425, 429, 500, 502, 503, 504}
_CHUNK = 1 << 20


class DownloadError(RuntimeError):
    """A download failed for good (all mirrors and retries exhausted, or a checksum mismatch)."""


def file_digest(path: str | Path, algorithm: str = "sha256") -> str:
    """Hex digest of a file, read in 1 MiB chunks."""
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def _check_digest(path: Path, sha256: str | None, md5: str | None) -> str | None:
    """Return an error message if a known checksum does not match, else None."""
    for algorithm, expected in (("sha256", sha256), ("md5", md5)):
        if expected:
            got = file_digest(path, algorithm)
            if got.lower() != expected.lower():
                return f"{algorithm} mismatch for {path.name}: expected {expected}, got {got}"
    return None


def _total_from_headers(resp: http.client.HTTPResponse, offset: int) -> int | None:
    content_range = resp.headers.get("Content-Range")  # "bytes 100-999/1000"
    if content_range and "/" in content_range:
        total = content_range.rsplit("/", 1)[1].strip()
        if total.isdigit():
            return int(total)
    length = resp.headers.get("Content-Length")
    if length and length.isdigit():
        return int(length) + offset
    return None


def _fetch_once(url: str, part: Path, timeout: float, progress: bool, desc: str) -> None:
    """One attempt: append the missing bytes of ``url`` to ``part`` (resuming what is there)."""
    offset = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": USER_AGENT}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    request = urllib.request.Request(url, headers=headers)
    try:
        resp = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as e:
        if e.code == 416 and offset:
            # Range not satisfiable: the .part already holds the whole file, if the server
            # says so; otherwise it is stale and we start over.
            total = (e.headers.get("Content-Range") or "").rsplit("/", 1)[-1].strip()
            if total.isdigit() and int(total) == offset:
                return
            part.unlink()
        raise
    with resp:
        if offset and resp.status != 206:
            offset = 0  # the server ignored Range: start over rather than append a full copy
        total = _total_from_headers(resp, offset)
        mode = "ab" if offset else "wb"
        with (
            open(part, mode) as out,
            tqdm(
                total=total,
                initial=offset,
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                desc=desc,
                disable=not show_bars(progress),
                leave=False,
            ) as bar,
        ):
            while True:
                block = resp.read(_CHUNK)
                if not block:
                    break
                out.write(block)
                bar.update(len(block))
        size = part.stat().st_size
        if total is not None and size != total:
            # A connection that closes early is transient: the next attempt resumes from here.
            raise http.client.IncompleteRead(b"", total - size)


def _is_transient(error: BaseException) -> bool:
    if isinstance(error, urllib.error.HTTPError):
        return error.code in TRANSIENT_HTTP
    if isinstance(error, urllib.error.URLError) and isinstance(error.reason, socket.gaierror):
        return False  # unknown host: offline, or a typo; waiting a minute would not help
    return isinstance(
        error,
        urllib.error.URLError
        | http.client.IncompleteRead
        | http.client.RemoteDisconnected
        | ConnectionError
        | TimeoutError,
    )


def download(
    urls: str | Sequence[str],
    dest: str | Path,
    *,
    sha256: str | None = None,
    md5: str | None = None,
    retries: int = 5,
    backoff: float = 2.0,
    timeout: float = 60.0,
    progress: bool = True,
) -> Path:
    """Download ``urls`` (a URL, or mirrors tried in order) to ``dest``; return ``dest``.

    An existing ``dest`` is reused when its checksum matches (or no checksum is known: a file
    is only ever renamed to ``dest`` once complete). A ``dest.part`` left by an interrupted run
    is resumed. Transient failures (timeouts, dropped connections, HTTP 429/5xx) are retried
    ``retries`` times with exponential backoff ``backoff * 2**k`` seconds; a permanent HTTP
    error moves on to the next mirror.

    Raises:
        DownloadError: every mirror failed, or the checksum does not match (the bad file is
            deleted so the next run downloads it again).
    """
    dest = Path(dest)
    url_list = [urls] if isinstance(urls, str) else list(urls)
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.exists():
        problem = _check_digest(dest, sha256, md5)
        if problem is None:
            return dest
        dest.unlink()
    part = dest.with_name(dest.name + ".part")
    failures: list[str] = []
    for i, url in enumerate(url_list):
        if i > 0:
            part.unlink(missing_ok=True)  # never splice bytes from two different servers
        error = _fetch_with_retries(url, part, retries, backoff, timeout, progress, dest.name)
        if error is not None:
            failures.append(f"{url}: {error}")
            continue
        problem = _check_digest(part, sha256, md5)
        if problem is not None:
            part.unlink()
            raise DownloadError(
                f"{problem} (from {url}). The corrupt download was deleted; run the same "
                "command again. If it fails again the file changed upstream: please report it."
            )
        os.replace(part, dest)
        return dest
    raise DownloadError(
        f"could not download {dest.name}. Tried:\n  "
        + "\n  ".join(failures)
        + f"\nA partial file, if any, is kept at {part} and is resumed on the next run. "
        "If you have the file already, use --source PATH instead."
    )


def _fetch_with_retries(
    url: str, part: Path, retries: int, backoff: float, timeout: float, progress: bool, desc: str
) -> str | None:
    """Fetch ``url`` into ``part``; None on success, else the last error as text."""
    for attempt in range(retries + 1):
        try:
            _fetch_once(url, part, timeout, progress, desc)
            return None
        except Exception as e:  # sorted into transient or permanent just below
            if not _is_transient(e) or attempt == retries:
                return repr(e)
            time.sleep(backoff * 2**attempt)
    return "no attempt made"
