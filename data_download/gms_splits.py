"""The GMS train/test name lists, converted from the GMS repository's pickles to JSON.

GMS (Huo et al.) publishes ``Dataset/<name>/<name>_train_test_names.pkl``, each a dict
``{"train": {"name_list": [...]}, "test": {"name_list": [...]}}``. A pickle can run arbitrary
code when loaded, so these files are read with an unpickler that refuses to look up any class
or function: plain dicts, lists and strings load, anything else is an error. The result is
written as ``DATA_DIR/splits/gms/<dataset>.json`` = ``{"train": [...], "test": [...]}``.
"""

from __future__ import annotations

import io
import json
import pickle
import tempfile
from pathlib import Path
from typing import Any

from wavegms.utils.atomic import atomic_write_json as write_json_atomic

from .download import download
from .extract import (
    ExtractLimit,
    extract_nested,
    is_archive,
    is_junk,
    remove_tree,
    safe_extract,
)
from .staging import PreparationError

REPOSITORY = "https://github.com/King-HAW/GMS"
COMMIT = "5a9ce0084d2558c800e420f2712ab2adc1af38a6"  # pinned: the lists must never drift
PICKLES = {
    "busi": "Dataset/busi/busi_train_test_names.pkl",
    "bus": "Dataset/bus/bus_train_test_names.pkl",
    "ham10000": "Dataset/ham10000/ham10000_train_test_names.pkl",
    "kvasir_instrument": "Dataset/kvasir-instrument/kvasir_train_test_names.pkl",
}
EXPECTED = {
    "busi": (517, 130),
    "bus": (132, 31),
    "ham10000": (8015, 2000),
    "kvasir_instrument": (472, 118),
}
CITATION = (
    "Huo J, Ouyang X, Ourselin S, Sparks R. Generative Medical Segmentation. "
    "AAAI 2025. https://arxiv.org/abs/2403.18198"
)
_TMP_PREFIX = ".gms_splits."  # a temporary folder in DATA_DIR; stale ones are removed
_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


class _DataOnlyUnpickler(pickle.Unpickler):
    """Loads only pickle's built-in data opcodes (dict, list, tuple, str, numbers)."""

    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(
            f"refusing to load {module}.{name}: a split list must contain only dicts, lists "
            "and strings"
        )


def safe_unpickle(data: bytes) -> Any:
    """Unpickle ``data`` without ever importing or calling anything."""
    return _DataOnlyUnpickler(io.BytesIO(data)).load()


def _names(obj: Any, part: str, path: Path) -> list[str]:
    value = obj.get(part) if isinstance(obj, dict) else None
    if isinstance(value, dict):
        value = value.get("name_list")
    if not isinstance(value, list | tuple) or not all(isinstance(n, str) for n in value):
        raise PreparationError(f"{path}: no list of names under [{part!r}]['name_list']")
    out = []
    for n in value:
        # Names are file stems in GMS; strip an extension should a list carry one.
        out.append(n[: -len(Path(n).suffix)] if n.lower().endswith(_IMAGE_SUFFIXES) else n)
    return out


def read_split_pickle(path: str | Path) -> dict[str, list[str]]:
    """``{"train": [...], "test": [...]}`` from a GMS ``*_train_test_names.pkl``.

    Raises:
        PreparationError: the file is not a data-only pickle of the expected shape.
    """
    path = Path(path)
    try:
        obj = safe_unpickle(path.read_bytes())
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, IndexError) as e:
        raise PreparationError(f"cannot read the GMS split list {path}: {e}") from e
    return {"train": _names(obj, "train", path), "test": _names(obj, "test", path)}


def _dataset_of(pkl: Path) -> str | None:
    for dataset, rel in PICKLES.items():
        if pkl.name == Path(rel).name:
            return dataset
    return None


def _is_done(out_dir: Path) -> bool:
    for dataset in PICKLES:
        try:
            split = json.loads((out_dir / f"{dataset}.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return False
        if not (
            isinstance(split, dict)
            and isinstance(split.get("train"), list)
            and isinstance(split.get("test"), list)
        ):
            return False
    return True


def prepare(
    data_dir: Path,
    source: Path | None = None,
    *,
    force: bool = False,
    progress: bool = True,
    limit: ExtractLimit | None = None,
) -> Path:
    """Write ``data_dir/splits/gms/<dataset>.json`` for the four datasets; return that folder.

    From ``source`` (a folder such as a clone of the GMS repository, or an archive of it) when
    given, else downloaded from the GMS repository at a pinned commit. ``limit`` bounds what
    extracting a source archive may write.
    """
    out_dir = data_dir / "splits" / "gms"
    if not force and _is_done(out_dir):
        print(f"GMS split lists already prepared in {out_dir}: nothing to do.")
        return out_dir
    for stale in sorted(data_dir.glob(f"{_TMP_PREFIX}*")) if data_dir.is_dir() else []:
        print(f"removing {stale}, left by an interrupted run")
        remove_tree(stale)
    with tempfile.TemporaryDirectory(prefix=_TMP_PREFIX, dir=_mkdir(data_dir)) as tmp:
        pickles: dict[str, Path] = {}
        if source is None:
            for dataset, rel in PICKLES.items():
                urls = [
                    f"https://raw.githubusercontent.com/King-HAW/GMS/{ref}/{rel}"
                    for ref in (COMMIT, "main", "master")
                ]
                pickles[dataset] = download(
                    urls, data_dir / ".downloads" / "gms" / Path(rel).name, progress=progress
                )
            where = f"{REPOSITORY} at commit {COMMIT}"
        else:
            root = source
            if source.is_file() and is_archive(source):
                limit = limit if limit is not None else ExtractLimit()
                root = safe_extract(source, Path(tmp) / "src", progress=progress, limit=limit)
                extract_nested(root, progress=progress, limit=limit)
            elif source.is_file():
                root = source.parent
            for pkl in sorted(root.rglob("*_train_test_names.pkl")):
                dataset = _dataset_of(pkl)
                if dataset and not is_junk(pkl) and dataset not in pickles:
                    pickles[dataset] = pkl
            if not pickles:
                raise PreparationError(
                    f"no GMS split lists (*_train_test_names.pkl) found in {source}"
                )
            where = str(source)
        for dataset, pkl in sorted(pickles.items()):
            split = read_split_pickle(pkl)
            sizes = (len(split["train"]), len(split["test"]))
            if sizes != EXPECTED[dataset]:
                print(
                    f"warning: {dataset}: GMS lists have {sizes[0]} train / {sizes[1]} test, "
                    f"the paper reports {EXPECTED[dataset][0]} / {EXPECTED[dataset][1]}"
                )
            write_json_atomic(out_dir / f"{dataset}.json", split)
            print(f"{dataset}: {sizes[0]} train / {sizes[1]} test -> {out_dir / dataset}.json")
        write_json_atomic(
            out_dir / "source.json",
            {
                "source": where,
                "repository": REPOSITORY,
                "citation": CITATION,
                "datasets": sorted(pickles),
            },
        )
    missing = sorted(set(PICKLES) - set(pickles))
    if missing:
        print(f"note: no split list found for {', '.join(missing)}")
    return out_dir


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path
