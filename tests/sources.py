"""Small raw sources for the ``data_download`` tests, made in memory: PNG bytes, a BUS-like
archive, an anti-aliased mask, and the one-line error check of ``python -m data_download``."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image


def png_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


def bus_members(n: int = 3, mask_value: int = 255) -> dict[str, bytes]:
    """A tiny BUS-like dataset: ``original/00000k.png`` (20 x 24 grey noise) + ``GT/00000k.png``
    (a rectangle of ``mask_value`` on 0)."""
    rng = np.random.default_rng(0)
    members = {}
    for k in range(1, n + 1):
        mask = np.zeros((20, 24), np.uint8)
        mask[4:12, 5:15] = mask_value
        members[f"original/{k:06d}.png"] = png_bytes(rng.integers(0, 256, (20, 24), np.uint8))
        members[f"GT/{k:06d}.png"] = png_bytes(mask)
    return members


def make_zip(path: Path, members: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> Path:
    """``path``, a zip of ``members`` (name -> bytes)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", method) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def soft_disc(top: int) -> tuple[np.ndarray, np.ndarray]:
    """An anti-aliased 32 x 32 disc scaled to 0..top (many grey levels) and its true shape."""
    yy, xx = np.mgrid[:32, :32]
    coverage = np.clip((12.0 - np.hypot(yy - 15.5, xx - 15.5)) / 4.0, 0.0, 1.0)
    return np.rint(coverage * top).astype(np.uint8), coverage >= 0.5


def one_line_error(capsys) -> str:  # noqa: ANN001 - pytest's capsys
    """The captured stderr, checked to be one line with no traceback."""
    err = capsys.readouterr().err.strip()
    assert err and "\n" not in err and "Traceback" not in err, err
    return err
