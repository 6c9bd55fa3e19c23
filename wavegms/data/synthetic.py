"""A built-in synthetic dataset: no download, exact masks, deterministic from a seed.

The task is built so that *where* a lesion usually is tells little: only *what it looks like*
finds it. Lesions sit anywhere in the image (they may be cut by its border), have any size,
orientation and shape, and an image holds none (15%), one (65%) or two (20%) of them. The best
constant mask (see :mod:`wavegms.engine.prior`) scores a mean Dice of 0.1-0.2 on these images
(measured at 64 px: 0.11 from the quick preset's 32 training masks, 0.19 from 400).

Two kinds of images, drawn with vectorised numpy:

- ``ultrasound``: grey tissue with depth attenuation, bright layered bands and multiplicative
  speckle. Lesions are ellipses or lobulated blobs (a radius ``r(theta)`` with random Fourier
  harmonics), hypoechoic (dark, 65%) or hyperechoic (bright), with their own echo texture,
  sometimes an echogenic rim (dark lesions) or a dark halo (bright ones), and posterior
  shadowing or enhancement. The mask is the lesions.
- ``endoscopy``: pink textured mucosa with vessels, vignetting, a dark field-of-view border and
  specular highlights, with instruments (metallic or plastic shafts of varied colour, with
  forceps jaws or a snare loop) entering from any side at any angle. The mask is the
  instruments.

Item ``i`` depends only on ``(seed, i, kind, image_size, split)``: datasets of any length and
any access order agree item by item. A 64 x 64 item takes about a millisecond.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from torch.utils.data import Dataset

from .images import save_image_png, save_mask_png
from .layout import IMAGES, MASKS, write_info
from .tensors import to_tensors

KINDS = ("ultrasound", "endoscopy", "mixed")
_CODE = {"ultrasound": 1, "endoscopy": 2}
_ABBREVIATION = {"ultrasound": "us", "endoscopy": "endo"}
_SPLITS = {None: 0, "train": 1, "val": 2, "test": 3}


# ----------------------------------------------------------------------------------------------
# Drawing helpers. Coordinates are pixel centres in [0, 1]: y is a column, x a row, and
# broadcasting makes every expression a full image without materialising meshgrids.
# ----------------------------------------------------------------------------------------------


def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    t = (np.arange(size, dtype=np.float32) + 0.5) / size
    return t[:, None], t[None, :]


def _smooth_field(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """Smooth random field ``[size, size]``, ~unit variance: smoothstep-interpolated lattice."""
    lattice = rng.standard_normal((cells + 1, cells + 1)).astype(np.float32)
    t = np.linspace(0.0, cells, size, dtype=np.float32)
    i = np.minimum(t.astype(np.int64), cells - 1)
    f = t - i
    f = f * f * (3.0 - 2.0 * f)
    rows = lattice[i] * (1.0 - f)[:, None] + lattice[i + 1] * f[:, None]
    return rows[:, i] * (1.0 - f)[None, :] + rows[:, i + 1] * f[None, :]


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))


# ----------------------------------------------------------------------------------------------
# What an image holds: no lesion, one, or two
# ----------------------------------------------------------------------------------------------

P_NONE, P_TWO = 0.15, 0.20


def _count(rng: np.random.Generator) -> int:
    u = rng.random()
    return 0 if u < P_NONE else (2 if u < P_NONE + P_TWO else 1)


def _centres(rng: np.random.Generator, n: int, margin: float = 0.1) -> list[np.ndarray]:
    """``n`` points uniform in ``[margin, 1 - margin]^2``, two of them at least 0.3 apart (so
    that two lesions stay two)."""
    points: list[np.ndarray] = []
    while len(points) < n:
        p = rng.uniform(margin, 1.0 - margin, 2)
        if all(np.hypot(*(p - q)) > 0.3 for q in points):
            points.append(p)
    return points


# ----------------------------------------------------------------------------------------------
# Ultrasound
# ----------------------------------------------------------------------------------------------


def _lesion(
    rng: np.random.Generator, size: int, y: np.ndarray, x: np.ndarray, centre: np.ndarray
) -> tuple[np.ndarray, float]:
    """A blob centred at ``centre`` (``(y, x)``): signed distance in pixels (<0 inside) and its
    mean radius. An ellipse of any orientation, often lobulated or irregular: a radius
    ``r(theta)`` with random Fourier harmonics."""
    area = rng.uniform(0.02, 0.12)  # of the image; it may be cut by the border
    aspect = rng.uniform(0.45, 1.0)
    ax, ay = 1.0 / np.sqrt(aspect), np.sqrt(aspect)
    angle = rng.uniform(0.0, np.pi)
    harmonics = np.arange(2, 9)
    irregularity = rng.choice([0.0, rng.uniform(0.1, 0.45)], p=[0.3, 0.7])
    amps = rng.uniform(0.0, 1.0, harmonics.size) * irregularity / (harmonics - 1) ** 0.8
    phases = rng.uniform(0.0, 2 * np.pi, harmonics.size)
    r0 = np.sqrt(area / (np.pi * (1.0 + 0.5 * np.sum(amps**2))))
    dy, dx = y - centre[0], x - centre[1]
    u = (np.cos(angle) * dx + np.sin(angle) * dy) / ax
    v = (-np.sin(angle) * dx + np.cos(angle) * dy) / ay
    theta = np.arctan2(v, u)
    radius = r0 * (
        1.0
        + sum(a * np.cos(k * theta + p) for k, a, p in zip(harmonics, amps, phases, strict=True))
    )
    signed = (np.hypot(u, v) - radius) * size * min(ax, ay)  # ~ distance to the border, pixels
    return signed, r0


def _speckle(rng: np.random.Generator, size: int, looks: float) -> np.ndarray:
    """Multiplicative speckle of mean 1, grain ~ ``size / 112`` pixels.

    Gamma noise of ``looks / g**2`` looks, box-averaged over ``g x g`` pixels, has the
    statistics of ``looks``-look speckle with grains of ``g`` pixels: real speckle is a
    property of the probe, so its grain grows with the image resolution.
    """
    g = max(1, round(size / 112))
    k = looks * g * g
    noise = rng.gamma(k, 1.0 / k, size=(size + g - 1, size + g - 1)).astype(np.float32)
    if g == 1:
        return noise
    c = np.cumsum(np.cumsum(np.pad(noise, ((1, 0), (1, 0))), axis=0), axis=1)
    return (c[g:, g:] - c[:-g, g:] - c[g:, :-g] + c[:-g, :-g]) / (g * g)


def ultrasound_image(rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray]:
    """One ultrasound-like image ``[S, S, 3]`` float32 in [0, 1] and its lesion mask ``[S, S]``
    (empty in 15% of the images)."""
    y, x = _grid(size)
    tissue = (0.4 + 0.06 * _smooth_field(rng, size, 4)) * (1.0 - rng.uniform(0.1, 0.3) * y)
    layers = np.zeros_like(tissue)
    for _ in range(rng.integers(1, 4)):  # bright layered bands: skin, fascia, Cooper ligaments
        y0 = rng.uniform(0.03, 0.97)
        wave = rng.uniform(0.0, 0.05) * np.sin(
            2 * np.pi * rng.uniform(0.5, 2.0) * x + rng.uniform(0, 2 * np.pi)
        )
        width = rng.uniform(0.006, 0.02)
        layers = layers + rng.uniform(0.08, 0.2) * np.exp(-(((y - y0 - wave) / width) ** 2))
    image = (tissue + layers) * _speckle(rng, size, rng.uniform(2.0, 4.0))

    mask = np.zeros((size, size), dtype=bool)
    for centre in _centres(rng, _count(rng)):
        signed, r0 = _lesion(rng, size, y, x, centre)
        mask |= signed <= 0.0
        inside = _sigmoid(-signed / 0.6)  # ~1 px soft edge in the image; the mask stays exact
        # Its own echo texture: a level relative to the tissue and a speckle of its own.
        if rng.random() < 0.65:  # hypoechoic: cysts, most masses
            level = rng.uniform(0.1, 0.45)
            own = level * tissue * _speckle(rng, size, rng.uniform(1.5, 3.0))
            ring = rng.uniform(0.1, 0.25) if rng.random() < 0.5 else 0.0  # echogenic rim
        else:  # hyperechoic: lipomas, fibrous tissue; coarser, brighter echoes
            level = rng.uniform(1.6, 2.2)
            own = level * tissue * _speckle(rng, size, rng.uniform(4.0, 8.0))
            ring = -rng.uniform(0.1, 0.2) if rng.random() < 0.5 else 0.0  # dark halo
        image = image * (1.0 - inside) + own * inside
        if ring:
            width = max(1.0, rng.uniform(0.01, 0.025) * size)
            image = image + ring * np.exp(-((signed / width) ** 2)) * (signed > 0)
        # Posterior shadowing (dark lesions mostly) or enhancement, below the lesion.
        column = np.exp(-(((x - centre[1]) / r0) ** 2))
        behind = _sigmoid((y - centre[0] - 0.5 * r0) / 0.04) * column * (signed > 0)
        gain = rng.uniform(0.15, 0.4) * (1.0 if rng.random() < 0.5 else -1.0)
        image = image * (1.0 + gain * behind)

    image = np.clip(image, 0.0, 1.0).astype(np.float32)
    return np.repeat(image[:, :, None], 3, axis=2), mask


# ----------------------------------------------------------------------------------------------
# Endoscopy
# ----------------------------------------------------------------------------------------------


def _capsule(px: np.ndarray, py: np.ndarray, p0: np.ndarray, p1: np.ndarray, half: float):
    """Distance to segment p0-p1 (relative to ``half``: <= 1 inside) and the signed offset."""
    d = p1 - p0
    length = float(np.hypot(*d)) + 1e-9
    d = d / length
    rx, ry = px - p0[0], py - p0[1]
    t = np.clip(rx * d[0] + ry * d[1], 0.0, length)
    ex, ey = rx - t * d[0], ry - t * d[1]
    across = (rx * d[1] - ry * d[0]) / half  # signed, for cylindrical shading
    return np.hypot(ex, ey) / half, across


def _instrument(rng: np.random.Generator, size: int, y: np.ndarray, x: np.ndarray):
    """One instrument: its mask and its shaded colour image."""
    # From any side, at any place along it, at any angle inward: tips end anywhere.
    side = rng.integers(4)
    s = rng.uniform(0.15, 0.85)
    entry = np.array([[s, -0.1], [s, 1.1], [-0.1, s], [1.1, s]][side], dtype=np.float32)
    inward = (0.5 * np.pi, -0.5 * np.pi, 0.0, np.pi)[side]  # points are (x, y)
    heading = inward + rng.uniform(-0.9, 0.9)
    direction = np.array([np.cos(heading), np.sin(heading)], dtype=np.float32)
    tip = entry + direction * rng.uniform(0.3, 0.85)
    half = rng.uniform(0.025, 0.065)
    dist, across = _capsule(x, y, entry, tip, half)
    mask = dist <= 1.0
    style = rng.random()
    if style < 0.45:  # forceps: two jaws opening at the tip
        opening = rng.uniform(0.15, 0.6)
        jaw = rng.uniform(0.08, 0.16)
        for sign in (-1.0, 1.0):
            a = heading + sign * opening
            end = tip + jaw * np.array([np.cos(a), np.sin(a)], dtype=np.float32)
            mask |= _capsule(x, y, tip, end, half * 0.6)[0] <= 1.0
    elif style < 0.75:  # snare: a wire loop beyond the sheath
        loop = rng.uniform(0.06, 0.14)
        centre = tip + direction * loop
        ring = np.abs(np.hypot(x - centre[0], y - centre[1]) - loop)
        mask |= ring <= max(0.008, 1.2 / size)
    if rng.random() < 0.65:  # metal
        colour = np.array([1.0, 1.0, 1.04], dtype=np.float32) * rng.uniform(0.45, 0.8)
    else:  # plastic sheath, often blue or black
        colour = np.array(
            rng.choice([[0.15, 0.3, 0.65], [0.12, 0.12, 0.14], [0.8, 0.8, 0.78], [0.2, 0.5, 0.35]]),
            dtype=np.float32,
        )  # blue, black, white or green
    across = np.clip(across, -1.0, 1.0)
    shade = 0.55 + 0.45 * np.sqrt(1.0 - across**2)
    shade = shade + 0.35 * np.exp(-(((across - rng.uniform(-0.5, 0.5)) / 0.18) ** 2))
    return mask, shade[..., None] * colour


def endoscopy_image(rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray]:
    """One endoscopy-like image ``[S, S, 3]`` float32 in [0, 1] and its instrument mask
    ``[S, S]`` (empty in about 15% of the images)."""
    y, x = _grid(size)
    mucosa = np.array(
        [rng.uniform(0.75, 0.95), rng.uniform(0.35, 0.55), rng.uniform(0.3, 0.48)], dtype=np.float32
    )
    shade = 1.0 + 0.18 * _smooth_field(rng, size, 3) + 0.06 * _smooth_field(rng, size, 10)
    image = shade[..., None] * mucosa
    vessels = np.exp(-((_smooth_field(rng, size, 5) / 0.06) ** 2))  # thin iso-contours
    image = image * (1.0 - 0.25 * vessels[..., None] * np.array([0.3, 1.0, 0.9], np.float32))
    r = np.hypot(x - 0.5, y - 0.5)
    image = image * np.clip(1.0 - rng.uniform(0.3, 0.8) * (r / 0.7) ** 2, 0.0, 1.0)[..., None]

    mask = np.zeros((size, size), dtype=bool)
    for _ in range(_count(rng)):
        m, colour = _instrument(rng, size, y, x)
        image = np.where(m[..., None], colour, image)
        mask |= m

    for _ in range(rng.integers(2, 9)):  # specular highlights, on tissue and metal alike
        sy, sx = rng.uniform(0.004, 0.02, 2)
        cy, cx = rng.uniform(0.05, 0.95, 2)
        spot = np.clip(1.5 * np.exp(-(((y - cy) / sy) ** 2 + ((x - cx) / sx) ** 2)), 0.0, 1.0)
        image = image + (1.0 - image) * spot[..., None]

    fov = r < rng.uniform(0.55, 0.75)  # the round field of view cuts the corners
    image = image * fov[..., None]
    mask &= fov
    image = image + rng.normal(0.0, 0.015, image.shape).astype(np.float32)
    return np.clip(image, 0.0, 1.0).astype(np.float32), mask


_DRAW = {"ultrasound": ultrasound_image, "endoscopy": endoscopy_image}


# ----------------------------------------------------------------------------------------------
# Dataset
# ----------------------------------------------------------------------------------------------


class SyntheticDataset(Dataset):
    """``n`` synthetic images of side ``image_size``, same items as :class:`SegmentationDataset`.

    Args:
        n: number of items.
        image_size: side ``S`` (any size >= 16; multiples of 8 suit the model).
        kind: ``"ultrasound"``, ``"endoscopy"`` or ``"mixed"`` (even items ultrasound, odd
            items endoscopy).
        seed: a non-negative integer.
        split: a name mixed into the seed and the item names (``make_synthetic_datasets``
            uses ``train`` / ``val`` / ``test``), so splits never share an item.

    Items: ``image`` float32 ``[3, S, S]`` in [0, 1], ``mask`` float32 ``[1, S, S]`` in {0, 1},
    ``name`` like ``synthetic_us_00012`` (``synthetic_us_val_00012`` with a split).
    ``classes`` maps each name to its kind.
    """

    def __init__(
        self,
        n: int,
        image_size: int = 64,
        kind: str = "ultrasound",
        seed: int = 0,
        *,
        split: str | None = None,
    ) -> None:
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
        if split not in _SPLITS:
            raise ValueError(f"split must be one of {tuple(_SPLITS)}, not {split!r}")
        if n < 0 or image_size < 16 or seed < 0:
            raise ValueError(
                f"need n >= 0, image_size >= 16, seed >= 0; got {n}, {image_size}, {seed}"
            )
        self.n, self.image_size, self.kind, self.seed, self.split = (
            int(n),
            int(image_size),
            kind,
            int(seed),
            split,
        )
        infix = f"{split}_" if split else ""
        self.names: list[str] = [
            f"synthetic_{_ABBREVIATION[self.item_kind(i)]}_{infix}{i:05d}" for i in range(n)
        ]
        self.classes: dict[str, str] | None = {
            name: self.item_kind(i) for i, name in enumerate(self.names)
        }

    def item_kind(self, i: int) -> str:
        if self.kind != "mixed":
            return self.kind
        return "ultrasound" if i % 2 == 0 else "endoscopy"

    def __len__(self) -> int:
        return self.n

    def generate(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """Item ``i`` as numpy: ``[S, S, 3]`` float32 in [0, 1] and ``[S, S]`` bool."""
        if not 0 <= i < self.n:
            raise IndexError(f"index {i} out of range for {self.n} items")
        kind = self.item_kind(i)
        rng = np.random.default_rng(
            [self.seed, i, _CODE[kind], self.image_size, _SPLITS[self.split]]
        )
        return _DRAW[kind](rng, self.image_size)

    def __getitem__(self, i: int) -> dict[str, Any]:
        if -self.n <= i < 0:
            i += self.n
        image, mask = to_tensors(*self.generate(i))
        return {"image": image, "mask": mask, "name": self.names[i]}

    def __repr__(self) -> str:
        split = f", split={self.split!r}" if self.split else ""
        return (
            f"SyntheticDataset(n={self.n}, image_size={self.image_size}, "
            f"kind={self.kind!r}, seed={self.seed}{split})"
        )


def make_synthetic_datasets(
    n_train: int,
    n_val: int,
    n_test: int,
    image_size: int = 64,
    kind: str = "ultrasound",
    seed: int = 0,
) -> dict[str, SyntheticDataset]:
    """``{"train", "val", "test"}`` synthetic datasets with disjoint random streams.

    Each split has its own stream, so e.g. the test set stays the same when ``n_train``
    changes (quick mode vs full mode).
    """
    sizes = {"train": n_train, "val": n_val, "test": n_test}
    return {
        split: SyntheticDataset(n, image_size, kind, seed, split=split)
        for split, n in sizes.items()
    }


def export_synthetic(dataset: SyntheticDataset, folder: str | Path) -> Path:
    """Write ``dataset``'s items in the prepared layout (:mod:`wavegms.data.layout`) under
    ``folder``: ``images/<name>.png``, ``masks/<name>.png`` and ``info.json`` with the classes.

    The file-based pipeline (PNG decoding, :class:`SegmentationDataset`, the run's loaders) then
    runs on them with no download: the tests, and the benchmarks' training loop. Returns
    ``folder``.
    """
    folder = Path(folder)
    (folder / IMAGES).mkdir(parents=True, exist_ok=True)
    (folder / MASKS).mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(dataset.names):
        image, mask = dataset.generate(i)
        save_image_png(image, folder / IMAGES / f"{name}.png")
        save_mask_png(mask, folder / MASKS / f"{name}.png")
    write_info(
        folder, {"dataset": folder.name, "source": repr(dataset), "classes": dataset.classes}
    )
    return folder
