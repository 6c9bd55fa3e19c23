"""Image and mask files <-> numpy arrays: the one place that knows about PIL modes.

Both the preparation step (``python -m data_download``) and the library (``wavegms.data``,
``predict``) read and write files through these functions, so a mask means the same thing
everywhere. Only numpy and Pillow are imported: preparing data must not import torch.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, PngImagePlugin

from ..utils.atomic import atomic_write
from ..utils.errors import cannot_read

# The file types read as images everywhere (preparation, datasets, predict).
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")

# UnidentifiedImageError is an OSError: one except clause covers "not an image" and "truncated".


def open_image(path: str | Path) -> Image.Image:
    """Open and fully decode an image file, turned upright as image viewers show it (the EXIF
    orientation of camera and phone JPEGs applied).

    Images over Pillow's warning limit (``PIL.Image.MAX_IMAGE_PIXELS``, ~89 megapixels) but
    under its hard limit (twice that) are read without Pillow's raw warning: memory is the
    caller's concern (``predict`` bounds it by pixels).

    Raises:
        FileNotFoundError: the file does not exist (the message names it).
        OSError: the file cannot be read (no permission, a disk error): one line naming it.
        ValueError: the file is not a readable image, is truncated or corrupt, or is over
            Pillow's hard pixel limit.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"image file not found: {path}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(path)
            # Image.open is lazy: decoding everything now is what surfaces truncated files.
            img.load()
    except Image.DecompressionBombError as e:
        # Not damage: the file is larger than Pillow agrees to decode.
        sizes = re.findall(r"(\d+) pixels", str(e))
        count = f"{sizes[0]} pixels, " if sizes else ""
        raise ValueError(
            f"cannot read image {path}: it is too large ({count}Pillow decodes at most twice "
            f"PIL.Image.MAX_IMAGE_PIXELS = {Image.MAX_IMAGE_PIXELS}). Downscale the image, or "
            "raise that limit if you trust the file."
        ) from None
    except OSError as e:
        if e.errno is not None:  # the system's: permission, disk; not the file's content
            raise cannot_read(e, path) from None
        raise _damaged(path, e) from e
    except (SyntaxError, ValueError) as e:
        raise _damaged(path, e) from e
    return ImageOps.exif_transpose(img) if img.getexif().get(_ORIENTATION, 1) != 1 else img


_ORIENTATION = 0x0112  # the EXIF tag: 1 = upright, 2-8 = mirrored and/or rotated


def _damaged(path: Path, error: Exception) -> ValueError:
    # Callers that know where the file came from add what to do (prepare the dataset again).
    return ValueError(f"cannot read image {path}: {error}. The file is corrupt or truncated.")


def _high_bit_depth(a: np.ndarray) -> np.ndarray:
    """Scale 16/32-bit integer or float pixel data to float32 in [0, 1]."""
    if a.dtype == np.uint16 or a.dtype == np.dtype(">u2"):
        return (a.astype(np.float32) / 65535.0).astype(np.float32)
    if np.issubdtype(a.dtype, np.integer):
        # PIL's "I" mode (int32) holds 16-bit PNGs on older Pillow versions.
        top = 65535.0 if a.max(initial=0) > 255 else 255.0
        return np.clip(a.astype(np.float32) / top, 0.0, 1.0)
    a = a.astype(np.float32)
    top = float(a.max(initial=0.0))
    return np.clip(a / top if top > 1.0 else a, 0.0, 1.0)


def image_to_array(img: Image.Image) -> np.ndarray:
    """Convert a decoded PIL image to float32 ``[H, W, 3]`` in [0, 1].

    Grey images are replicated to 3 channels; alpha is dropped; palette, CMYK and other
    colour modes go through RGB; 16-bit images keep their full range.
    """
    mode = img.mode
    if mode in ("RGB", "L"):
        a = np.array(img, dtype=np.float32)
        a /= 255.0  # in place: one float copy of a large image, not two
    elif mode == "1":
        a = np.asarray(img, dtype=np.float32)
    elif mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        a = _high_bit_depth(np.asarray(img))
    elif mode == "LA":
        a = np.asarray(img, dtype=np.float32)[..., 0] / 255.0
    else:  # RGBA, P, PA, CMYK, YCbCr, LAB, HSV, RGBX ...
        a = np.asarray(img.convert("RGB"), dtype=np.float32) / 255.0
    if a.ndim == 2:
        a = np.repeat(a[:, :, None], 3, axis=2)
    return np.ascontiguousarray(a, dtype=np.float32)


def load_image(path: str | Path) -> np.ndarray:
    """Read an image file as float32 ``[H, W, 3]`` in [0, 1].

    Grey, RGB, RGBA, palette and 16-bit files are all handled (see :func:`image_to_array`).

    Raises:
        FileNotFoundError: missing file. ValueError: corrupt or truncated file (names the path).
    """
    return image_to_array(open_image(path))


def _binarise(a: np.ndarray, top: float) -> tuple[np.ndarray, str | None]:
    """Apply the mask rule to one channel; also describe values other than 0/1 or 0/255."""
    levels = np.unique(a)
    peak = float(levels[-1]) if levels.size else 0.0
    scale = top if peak > top / 2 else peak
    fg = a >= scale / 2 if scale > 0 else np.zeros(a.shape, bool)
    values = set(levels.tolist())
    if values <= {0, 1} or values <= {0, 255} or values <= {0, top}:
        return fg, None
    return fg, f"{levels.size} levels {float(levels[0]):g}..{peak:g}"


def binarise_mask(img: Image.Image) -> tuple[np.ndarray, str | None]:
    """Convert a decoded mask image to bool ``[H, W]`` (True = foreground), and say whether its
    values were unusual: ``(mask, None)`` for 0/1 and 0/255 files, else ``(mask, note)`` with a
    short description such as ``"37 levels 0..100"``.

    The rule, one for every file:

    - alpha: a fully transparent pixel is background; colour: a pixel's value is its largest
      channel; palette files are read through their colours.
    - A pixel is foreground when its value is at least half the mask's scale. The scale is
      the largest value of the pixel type (``top``: 255 for 8-bit, 65535 for 16-bit, 1.0 for
      float files in [0, 1], else 255) when the file has values above ``top / 2``: 0/255,
      anti-aliased and JPEG 0..255 masks are cut at 128, so compression noise and faint edges
      stay background. A file whose values all lie in the lower half is on its own scale,
      its largest value: 0/1, 0/1/2 and 0/100 masks keep every labelled pixel, anti-aliased
      0..100 masks are cut at 50. An all-zero file is empty.
    """
    mode = img.mode
    alpha = None
    if mode == "P":
        img = img.convert("RGBA")
        mode = "RGBA"
    if mode in ("RGBA", "LA", "PA"):
        alpha = np.asarray(img.getchannel("A")) > 0
        img = img.convert("RGB" if mode == "RGBA" else "L")
        mode = img.mode
    note = None
    if mode == "1":
        fg = np.asarray(img, dtype=bool)
    else:
        if mode not in ("L", "RGB", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
            img = img.convert("RGB")
        a = np.asarray(img)
        if a.ndim == 3:
            a = a.max(axis=2)
        if np.issubdtype(a.dtype, np.floating):
            top = 1.0 if float(np.nanmax(a, initial=0.0)) <= 1.0 else 255.0
            a = np.nan_to_num(a, nan=0.0)
        elif a.dtype.itemsize == 1 or a.max(initial=0) <= 255:
            top = 255.0  # also PIL's 32-bit "I" mode holding 8-bit values
        else:
            top = 65535.0
        fg, note = _binarise(a, top)
    if alpha is not None:
        # An image whose colour is black everywhere but whose alpha draws the shape.
        if not fg.any() and 0 < alpha.sum() < alpha.size:
            return alpha, note
        fg = fg & alpha
    return np.ascontiguousarray(fg, dtype=bool), note


def mask_to_array(img: Image.Image) -> np.ndarray:
    """Convert a decoded mask image to bool ``[H, W]`` by the rule of :func:`binarise_mask`."""
    return binarise_mask(img)[0]


def load_mask(path: str | Path) -> np.ndarray:
    """Read a mask file as bool ``[H, W]`` (True = foreground). 0/1 and 0/255 files: nonzero
    is foreground; other files follow the one rule documented in :func:`binarise_mask`
    (at least half the type's range, or of the file's largest value when every value lies in
    the lower half of the range).

    Raises:
        FileNotFoundError: missing file. ValueError: corrupt or truncated file (names the path).
    """
    return mask_to_array(open_image(path))


def read_mask(path: str | Path) -> tuple[np.ndarray, str | None]:
    """:func:`load_mask`, plus the note of :func:`binarise_mask` on values other than 0/1, 0/255."""
    return binarise_mask(open_image(path))


def to_uint8(image: np.ndarray, chunk: int = 2**22) -> np.ndarray:
    """float [0, 1] -> uint8 [0, 255], rounding (exact round trip for 8-bit sources).

    Converted ``chunk`` values at a time (along the first axis): a float copy of a whole
    100-megapixel image would be 1.2 GB on top of it."""
    image = np.asarray(image)
    if image.ndim == 0:
        return np.asarray(np.clip(np.rint(image * 255.0), 0, 255), dtype=np.uint8)
    out = np.empty(image.shape, np.uint8)
    step = max(1, chunk // max(1, int(np.prod(image.shape[1:]))))
    for top in range(0, len(image), step):
        part = image[top : top + step] * 255.0
        np.rint(part, out=part)
        out[top : top + step] = np.clip(part, 0, 255, out=part)
    return out


def save_png(
    array: np.ndarray, path: str | Path, compress_level: int = 3, software: str | None = None
) -> None:
    """Write a uint8 ``[H, W]`` (grey) or ``[H, W, 3]`` (RGB) array as PNG, atomically.

    A level-3 compression is ~3x faster than Pillow's default for photos and only a
    few percent larger, which matters for the 10,015 HAM10000 images. ``software`` is
    recorded in the PNG's ``Software`` text field (see :func:`png_software`).
    """
    image = Image.fromarray(array)
    info = None
    if software is not None:
        info = PngImagePlugin.PngInfo()
        info.add_text(SOFTWARE, software)
    options = {"compress_level": compress_level, "pnginfo": info}
    atomic_write(path, lambda file: image.save(file, format="PNG", **options))


SOFTWARE = "Software"  # the PNG text field naming the program that wrote the file


def png_software(path: str | Path) -> str | None:
    """The ``Software`` text field of the PNG at ``path`` (None: none, or not a PNG). Reads
    only the header: the field is written before the pixels."""
    try:
        with Image.open(path) as image:
            value = image.info.get(SOFTWARE) if image.format == "PNG" else None
    except (OSError, ValueError, SyntaxError):
        return None
    return value if isinstance(value, str) else None


def save_image_png(image: np.ndarray, path: str | Path) -> None:
    """Write float ``[H, W, 3]`` in [0, 1] as an 8-bit PNG, grey ("L") when the channels agree."""
    a = to_uint8(image)
    if (a[..., 0] == a[..., 1]).all() and (a[..., 0] == a[..., 2]).all():
        a = a[..., 0]  # many ultrasound files are grey stored as RGB: 3x less disk
    save_png(a, path)


def save_mask_png(mask: np.ndarray, path: str | Path, software: str | None = None) -> None:
    """Write a bool ``[H, W]`` mask as a single-channel 0/255 PNG (``software``: see
    :func:`save_png`)."""
    save_png(np.where(mask, np.uint8(255), np.uint8(0)), path, software=software)
