"""Train / validation / test splits, and their reproducible record.

Protocols:

- ``gms``: the GMS train/test name lists; a seeded validation split is carved out of GMS train
  (stratified by class where the dataset has classes). Models are selected on validation; the
  test split is for the final evaluation only.
- ``random``: a seeded, stratified train/val/test split, for data without a published list.

Every run should save its :class:`Splits` next to its results (:meth:`Splits.save`), so the
exact item lists can be reloaded and the run reproduced.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..utils.atomic import atomic_write_json
from .layout import list_names, natural_key, read_info

PROTOCOLS = ("gms", "random")
SELECTIONS = ("val", "test")  # the split that selects the best checkpoint
SPLITS_FILE = "splits.json"  # a run folder's record of its splits (Splits.save)
EXCLUDED_CLASSES = ("normal",)  # BUSI's empty-mask class: excluded by the paper protocol


@dataclass
class Splits:
    """Item names of each split, and how they were made.

    ``selects_on`` names the split used for model selection: ``"val"`` by default; a
    paper-comparable run that selects on test must say ``"test"``.
    """

    train: list[str]
    val: list[str]
    test: list[str]
    protocol: str
    seed: int
    selects_on: str = "val"
    dataset: str | None = None
    source: str | None = None  # the name list the split came from, if any
    counts: dict[str, int] = field(init=False, compare=False)  # for readers of the JSON

    def __post_init__(self) -> None:
        self.train, self.val, self.test = list(self.train), list(self.val), list(self.test)
        if self.selects_on not in SELECTIONS:
            raise ValueError(f"selects_on must be one of {SELECTIONS}, not {self.selects_on!r}")
        for a, b in (("train", "val"), ("train", "test"), ("val", "test")):
            both = set(getattr(self, a)) & set(getattr(self, b))
            if both:
                raise ValueError(
                    f"splits overlap: {len(both)} items are in both {a} and {b} "
                    f"(e.g. {', '.join(sorted(both)[:3])})"
                )
        self.counts = {"train": len(self.train), "val": len(self.val), "test": len(self.test)}

    def save(self, path: str | Path) -> Path:
        """Write as JSON atomically (:mod:`wavegms.utils.atomic`); return the path."""
        return atomic_write_json(path, asdict(self), indent=1)

    @classmethod
    def load(cls, path: str | Path) -> Splits:
        """Read a file written by :meth:`save`."""
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        fields = {k for k, f in cls.__dataclass_fields__.items() if f.init}
        return cls(**{k: v for k, v in data.items() if k in fields})


def _allocate(sizes: Mapping[str, int], total: int) -> dict[str, int]:
    """Share ``total`` among strata proportionally to ``sizes`` (largest remainder), exactly."""
    n = sum(sizes.values())
    if n == 0 or total == 0:
        return dict.fromkeys(sizes, 0)
    quotas = {k: total * v / n for k, v in sizes.items()}
    out = {k: int(q) for k, q in quotas.items()}
    order = sorted(sizes, key=lambda k: (-(quotas[k] - out[k]), k))
    for k in order[: total - sum(out.values())]:
        out[k] += 1
    return out


def stratified_take(
    names: Sequence[str],
    classes: Mapping[str, str] | None,
    count: int,
    rng: np.random.Generator,
) -> tuple[list[str], list[str]]:
    """Draw ``count`` names, stratified by class; return ``(taken, rest)``, both sorted.

    Deterministic for a given generator state, whatever the input order.
    """
    strata: dict[str, list[str]] = {}
    for n in sorted(names, key=natural_key):
        strata.setdefault((classes or {}).get(n, ""), []).append(n)
    quota = _allocate({k: len(v) for k, v in strata.items()}, count)
    taken: list[str] = []
    for key in sorted(strata):
        members = strata[key]
        pick = rng.permutation(len(members))[: quota[key]]
        taken.extend(members[j] for j in pick)
    taken_set = set(taken)
    rest = [n for n in names if n not in taken_set]
    return sorted(taken, key=natural_key), sorted(rest, key=natural_key)


def default_gms_list(root: str | Path) -> Path:
    """Where ``python -m data_download gms_splits`` puts the list of ``root``'s dataset."""
    root = Path(root)
    return root.parent / "splits" / "gms" / f"{root.name}.json"


def read_gms_list(path: str | Path) -> dict[str, list[str]]:
    """``{"train": [...], "test": [...]}`` from a GMS split JSON.

    Raises:
        FileNotFoundError: no such file (the message gives the command that creates it).
        ValueError: not the expected shape.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"GMS split list {path} not found. Create it with:\n"
            f"  python -m data_download gms_splits --root {path.parent.parent.parent}"
        )
    data: Any = json.loads(path.read_text(encoding="utf-8"))
    out = {}
    for part in ("train", "test"):
        value = data.get(part) if isinstance(data, dict) else None
        if isinstance(value, dict):  # the GMS pickle shape {"train": {"name_list": [...]}}
            value = value.get("name_list")
        if not isinstance(value, list) or not all(isinstance(n, str) for n in value):
            raise ValueError(f"{path}: expected {{'train': [names], 'test': [names]}}")
        out[part] = value
    return out


def make_splits(
    root: str | Path,
    protocol: str = "gms",
    *,
    gms_list: str | Path | None = None,
    val_fraction: float = 0.1,
    test_fraction: float = 0.2,
    seed: int = 2333,
    include_normal: bool = False,
) -> Splits:
    """Split the prepared dataset ``root`` (= ``DATA_DIR/<dataset>``).

    Args:
        protocol: ``"gms"`` (published train/test lists; validation = ``val_fraction`` of GMS
            train) or ``"random"`` (``val_fraction`` and ``test_fraction`` of all items).
        gms_list: JSON ``{"train": [...], "test": [...]}``; default
            ``DATA_DIR/splits/gms/<dataset>.json``.
        seed: seeds the validation (and, for ``random``, test) draw.
        include_normal: ``random`` only: keep BUSI's ``normal`` (empty-mask) items, which the
            paper protocol excludes.

    Both protocols stratify by class when ``info.json`` has classes.

    Raises:
        FileNotFoundError: the dataset or the GMS list is missing; names from the list are
            not on disk (a few are listed). A dataset holding none of the GMS *test* names is
            not an error: the test split is then empty (train on it, evaluate elsewhere).
        ValueError: bad protocol or fractions.
    """
    root = Path(root)
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}; choose one of {PROTOCOLS}")
    if not (0 <= val_fraction < 1 and 0 <= test_fraction < 1 and val_fraction + test_fraction < 1):
        raise ValueError(
            f"fractions must be in [0, 1) with a positive remainder for training; got "
            f"val_fraction={val_fraction}, test_fraction={test_fraction}"
        )
    on_disk = list_names(root)
    classes = read_info(root).get("classes") or None
    rng = np.random.default_rng(seed)
    if protocol == "gms":
        if include_normal:
            raise ValueError(
                "include_normal applies to protocol='random' only: the GMS lists fix membership"
            )
        path = Path(gms_list) if gms_list is not None else default_gms_list(root)
        lists = read_gms_list(path)
        present = set(on_disk)
        test_names = lists["test"]
        if test_names and not any(n in present for n in test_names):
            # A copy without the held-out test images (e.g. a training-only release): train
            # and validate on GMS train; the test split is evaluated elsewhere.
            test_names = []
        missing = [n for n in lists["train"] + test_names if n not in present]
        if missing:
            raise FileNotFoundError(
                f"{len(missing)} names of the GMS list {path} are not in {root / 'images'} "
                f"(e.g. {', '.join(missing[:5])}). Is this the list of this dataset, and is the "
                "dataset completely prepared?"
            )
        n_val = round(val_fraction * len(lists["train"]))
        val, train = stratified_take(lists["train"], classes, n_val, rng)
        test = sorted(test_names, key=natural_key)
        source = str(path)
    else:
        names = [
            n for n in on_disk if include_normal or (classes or {}).get(n) not in EXCLUDED_CLASSES
        ]
        n_test = round(test_fraction * len(names))
        test, rest = stratified_take(names, classes, n_test, rng)
        n_val = round(val_fraction * len(names))
        val, train = stratified_take(rest, classes, n_val, rng)
        source = None
    return Splits(train, val, test, protocol=protocol, seed=seed, dataset=root.name, source=source)
