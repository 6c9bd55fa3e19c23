"""Splits: the GMS lists (and their safe conversion from pickles), random splits, records."""

from __future__ import annotations

import json
import pickle
from collections import Counter
from pathlib import Path

import pytest
from _paths import BUSI_SAMPLE, GMS_SPLITS, HAM_SAMPLE

from data_download import PreparationError, prepare
from data_download.gms_splits import EXPECTED, read_split_pickle, safe_unpickle
from wavegms.data import Splits, make_splits

DOCUMENTED = {
    "busi": (517, 130),
    "bus": (132, 31),
    "ham10000": (8015, 2000),
    "kvasir_instrument": (472, 118),
}


def _fake_prepared(root: Path, names: list[str], classes: dict[str, str] | None = None) -> Path:
    """A prepared-layout folder with empty files: splits only look at names, not pixels."""
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for n in names:
        (root / "images" / f"{n}.png").touch()
        (root / "masks" / f"{n}.png").touch()
    (root / "info.json").write_text(json.dumps({"dataset": root.name, "classes": classes}))
    return root


def _gms(dataset: str) -> dict[str, list[str]]:
    return json.loads((GMS_SPLITS / f"{dataset}.json").read_text())


# ----------------------------------------------------------------------------------------------
# The GMS lists
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dataset", sorted(DOCUMENTED))
def test_shared_gms_lists_have_the_documented_sizes(dataset):
    lists = _gms(dataset)
    assert (len(lists["train"]), len(lists["test"])) == DOCUMENTED[dataset] == EXPECTED[dataset]
    assert not set(lists["train"]) & set(lists["test"])
    assert len(set(lists["train"])) == len(lists["train"])


def test_gms_busi_names_are_the_prepared_names(tmp_path):
    busi = prepare("busi", tmp_path, BUSI_SAMPLE, progress=False, workers=1)
    lists = _gms("busi")
    listed = set(lists["train"]) | set(lists["test"])
    prepared = {p.stem for p in (busi / "images").iterdir()}
    assert {n for n in prepared if not n.startswith("normal")} <= listed
    assert not any(n.startswith("normal") for n in listed)  # normal cases are excluded


def test_gms_ham10000_names_are_the_prepared_names(tmp_path):
    ham = prepare("ham10000", tmp_path, HAM_SAMPLE, progress=False, workers=1)
    lists = _gms("ham10000")
    prepared = {p.stem for p in (ham / "images").iterdir()}
    assert len(prepared) == 5 and prepared <= set(lists["train"]) | set(lists["test"])
    assert all(n.startswith("ISIC_") for n in lists["train"] + lists["test"])


@pytest.mark.parametrize("dataset", sorted(DOCUMENTED))
def test_gms_protocol_gives_the_documented_sizes(tmp_path, dataset):
    lists = _gms(dataset)
    names = lists["train"] + lists["test"]
    classes = {n: n.split("_")[0] for n in names} if dataset == "busi" else None
    root = _fake_prepared(tmp_path / "data" / dataset, names, classes)
    (tmp_path / "data" / "splits" / "gms").mkdir(parents=True)
    (tmp_path / "data" / "splits" / "gms" / f"{dataset}.json").write_text(json.dumps(lists))
    s = make_splits(root, "gms")  # the default list location: DATA_DIR/splits/gms/<dataset>.json
    n_train, n_test = DOCUMENTED[dataset]
    assert len(s.test) == n_test and sorted(s.test) == sorted(lists["test"])
    assert len(s.train) + len(s.val) == n_train and len(s.val) == round(0.1 * n_train)
    assert set(s.train) | set(s.val) == set(lists["train"])
    assert s.protocol == "gms" and s.selects_on == "val" and s.seed == 2333
    if classes:  # stratified: validation keeps the class balance of GMS train
        train_mix = Counter(classes[n] for n in lists["train"])
        val_mix = Counter(classes[n] for n in s.val)
        for cls, k in train_mix.items():
            assert abs(val_mix[cls] - k * len(s.val) / n_train) < 1


def test_gms_val_is_seeded(tmp_path):
    lists = _gms("bus")
    root = _fake_prepared(tmp_path / "bus", lists["train"] + lists["test"])
    path = GMS_SPLITS / "bus.json"
    a, b = (make_splits(root, gms_list=path, seed=s) for s in (1, 1))
    c = make_splits(root, gms_list=path, seed=2)
    assert a.val == b.val and a.val != c.val and a.test == c.test


def test_gms_names_missing_on_disk_are_listed(tmp_path):
    lists = _gms("bus")
    root = _fake_prepared(tmp_path / "bus", lists["train"][:-2] + lists["test"])
    with pytest.raises(FileNotFoundError, match=lists["train"][-2]):
        make_splits(root, gms_list=GMS_SPLITS / "bus.json")


def test_missing_gms_list_gives_the_command(tmp_path):
    root = _fake_prepared(tmp_path / "data" / "bus", ["000001"])
    with pytest.raises(FileNotFoundError, match="python -m data_download gms_splits --root"):
        make_splits(root, "gms")


def test_gms_pickles_convert_without_unpickling_code(tmp_path):
    src = tmp_path / "GMS" / "Dataset"
    for dataset, (n_train, n_test) in (("busi", (3, 2)), ("kvasir-instrument", (2, 1))):
        (src / dataset).mkdir(parents=True)
        data = {
            "train": {"name_list": [f"{dataset}_{i}" for i in range(n_train)]},
            "test": {"name_list": [f"{dataset}_t{i}.png" for i in range(n_test)]},
        }
        stem = "kvasir" if dataset.startswith("kvasir") else dataset
        (src / dataset / f"{stem}_train_test_names.pkl").write_bytes(pickle.dumps(data, 2))
    out = prepare("gms_splits", tmp_path / "data", tmp_path / "GMS", progress=False)
    assert json.loads((out / "busi.json").read_text()) == {
        "train": ["busi_0", "busi_1", "busi_2"],
        "test": ["busi_t0", "busi_t1"],
    }
    kvasir = json.loads((out / "kvasir_instrument.json").read_text())
    assert kvasir["test"] == ["kvasir-instrument_t0"]


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_safe_unpickler_reads_plain_data_in_every_protocol(protocol):
    data = {"train": {"name_list": ["a", "b"]}, "test": {"name_list": ("c",)}, "n": [1, 2.5]}
    assert safe_unpickle(pickle.dumps(data, protocol)) == data


class _Exploit:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_safe_unpickler_refuses_code(tmp_path):
    marker = tmp_path / "pwned"
    payload = pickle.dumps({"train": {"name_list": [_Exploit(marker)]}})
    with pytest.raises(pickle.UnpicklingError, match="refusing to load"):
        safe_unpickle(payload)
    assert not marker.exists()
    (tmp_path / "busi_train_test_names.pkl").write_bytes(payload)
    with pytest.raises(PreparationError, match="busi_train_test_names.pkl"):
        read_split_pickle(tmp_path / "busi_train_test_names.pkl")
    assert not marker.exists()


# ----------------------------------------------------------------------------------------------
# Random splits and the saved record
# ----------------------------------------------------------------------------------------------


@pytest.fixture
def busi_like(tmp_path) -> Path:
    names = (
        [f"benign_{i}" for i in range(1, 61)]
        + [f"malignant_{i}" for i in range(1, 31)]
        + [f"normal_{i}" for i in range(1, 11)]
    )
    return _fake_prepared(tmp_path / "busi", names, {n: n.split("_")[0] for n in names})


def test_random_split_is_stratified_seeded_and_excludes_normal(busi_like):
    s = make_splits(busi_like, "random", seed=7)
    assert (len(s.train), len(s.val), len(s.test)) == (63, 9, 18)
    assert Counter(n.split("_")[0] for n in s.test) == {"benign": 12, "malignant": 6}
    assert Counter(n.split("_")[0] for n in s.val) == {"benign": 6, "malignant": 3}
    assert not any(n.startswith("normal") for n in s.train + s.val + s.test)
    assert make_splits(busi_like, "random", seed=7) == s
    assert make_splits(busi_like, "random", seed=8).test != s.test
    with_normal = make_splits(busi_like, "random", seed=7, include_normal=True)
    assert len(with_normal.train + with_normal.val + with_normal.test) == 100
    with pytest.raises(ValueError, match="random"):
        make_splits(busi_like, "gms", include_normal=True)


def test_random_split_without_classes(tmp_path):
    root = _fake_prepared(tmp_path / "bus", [f"{i:06d}" for i in range(1, 164)])
    s = make_splits(root, "random", val_fraction=0.1, test_fraction=0.2, seed=0)
    assert (len(s.train), len(s.val), len(s.test)) == (114, 16, 33)
    assert len(set(s.train) | set(s.val) | set(s.test)) == 163


def test_splits_save_and_load_round_trip(tmp_path, busi_like):
    s = make_splits(busi_like, "random", seed=3)
    path = s.save(tmp_path / "run" / "splits.json")
    assert [p.name for p in path.parent.iterdir()] == ["splits.json"]  # no temp file left
    assert Splits.load(path) == s
    assert json.loads(path.read_text())["counts"] == {"train": 63, "val": 9, "test": 18}


def test_overlapping_splits_are_rejected():
    with pytest.raises(ValueError, match="overlap.*b"):
        Splits(["a", "b"], ["b"], [], protocol="random", seed=0)
    with pytest.raises(ValueError, match="selects_on"):
        Splits(["a"], [], [], protocol="gms", seed=0, selects_on="train")


def test_gms_without_its_test_images_trains_on_train_with_an_empty_test(tmp_path):
    # The shipped BUSI training portion holds GMS train but none of GMS test (held out).
    lists = _gms("busi")
    root = _fake_prepared(tmp_path / "busi", lists["train"])
    splits = make_splits(root, "gms", gms_list=GMS_SPLITS / "busi.json", val_fraction=0.1)
    assert splits.test == []
    assert len(splits.train) + len(splits.val) == 517 and len(splits.val) == 52


def test_gms_with_part_of_its_test_images_is_still_an_error(tmp_path):
    lists = _gms("busi")
    root = _fake_prepared(tmp_path / "busi", lists["train"] + lists["test"][:5])
    with pytest.raises(FileNotFoundError, match="125 names"):
        make_splits(root, "gms", gms_list=GMS_SPLITS / "busi.json")
