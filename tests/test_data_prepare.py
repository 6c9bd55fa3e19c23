"""Preparing raw datasets into the common layout (no download: local sources only)."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import stat
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from _paths import BUSI_SAMPLE, HAM_SAMPLE, busi_items, busi_raw, busi_split_masks
from PIL import Image
from sources import bus_members, make_zip, png_bytes, soft_disc

from data_download import ManualDownloadRequired, PreparationError, prepare, staging
from data_download.__main__ import main
from wavegms.data import SegmentationDataset, load_mask
from wavegms.utils import atomic

BUSI = busi_items()  # read from the raw file names, independently of the preparation code
BUSI_NAMES = set(BUSI)
NORMAL = [n for n, cls in BUSI.items() if cls == "normal"]
MALIGNANT = [n for n, cls in BUSI.items() if cls == "malignant"]
BENIGN = [n for n, cls in BUSI.items() if cls == "benign"]
SPLIT = busi_split_masks()


@pytest.fixture(scope="module")
def busi(tmp_path_factory) -> Path:
    """The BUSI sample, prepared once for the read-only checks of this module."""
    root = tmp_path_factory.mktemp("data")
    return prepare("busi", root, BUSI_SAMPLE, progress=False, workers=1)


def _png(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def _pairs(folder: Path, names: list[str], images: str, masks: str, ext: str = ".png") -> None:
    rng = np.random.default_rng(0)
    for name in names:
        _png(folder / images / f"{name}{ext}", rng.integers(0, 256, (20, 24, 3), np.uint8))
        m = np.zeros((20, 24), np.uint8)
        m[4:12, 5:15] = 255
        _png(folder / masks / f"{name}.png", m)


# ----------------------------------------------------------------------------------------------
# BUSI
# ----------------------------------------------------------------------------------------------


def test_busi_names_counts_and_classes(busi):
    info = json.loads((busi / "info.json").read_text())
    names = {p.stem for p in (busi / "images").iterdir()}
    assert names == BUSI_NAMES == {p.stem for p in (busi / "masks").iterdir()}
    assert info["dataset"] == "busi"
    assert info["counts"] == {
        "images": len(BUSI),
        "masks": len(BUSI),
        "by_class": {"benign": len(BENIGN), "malignant": len(MALIGNANT), "normal": len(NORMAL)},
    }
    assert len(NORMAL) >= 2 and MALIGNANT and BENIGN  # the sample has every class
    assert info["classes"] == BUSI
    assert info["excluded_by_paper_protocol"] == sorted(NORMAL)
    assert info["licence"].startswith("CC0") and "Data in Brief" in info["citation"]
    for name in SPLIT:
        stem = busi_raw(name).stem
        cls = BUSI[name]
        assert info["items"][name]["source_masks"] == [
            f"{cls}/{stem}_mask.png",
            f"{cls}/{stem}_mask_1.png",
        ]


def test_busi_masks_are_merged_with_or(busi):
    assert len(SPLIT) >= 2
    for name in SPLIT:
        a = load_mask(busi_raw(name, "_mask"))
        b = load_mask(busi_raw(name, "_mask_1"))
        merged = np.asarray(Image.open(busi / "masks" / f"{name}.png"))
        assert (merged == np.where(a | b, 255, 0)).all()
        assert (a | b).sum() > max(a.sum(), b.sum())  # both files contributed


def test_prepared_masks_are_single_channel_0_255_and_images_match(busi):
    for mask_file in (busi / "masks").iterdir():
        img = Image.open(mask_file)
        assert img.mode == "L"
        assert set(np.unique(np.asarray(img))) <= {0, 255}
        assert Image.open(busi / "images" / mask_file.name).size == img.size
    assert not np.asarray(Image.open(busi / "masks" / f"{NORMAL[0]}.png")).any()
    # BUSI stores grey images as RGB: they are prepared as grey, pixel for pixel.
    raw = np.asarray(Image.open(busi_raw(MALIGNANT[0])))
    ours = Image.open(busi / "images" / f"{MALIGNANT[0]}.png")
    assert raw.ndim == 3 and ours.mode == "L" and (np.asarray(ours) == raw[..., 0]).all()


def test_prepared_busi_reads_as_a_dataset(busi):
    ds = SegmentationDataset(busi, image_size=64)
    assert len(ds) == len(BUSI) and ds.classes[NORMAL[-1]] == "normal"
    item = ds[ds.names.index(SPLIT[0])]
    assert item["image"].shape == (3, 64, 64) and item["mask"].shape == (1, 64, 64)


def test_preparing_twice_is_a_no_op(busi, capsys):
    before = {p: p.stat().st_mtime_ns for p in busi.rglob("*")}
    assert prepare("busi", busi.parent, BUSI_SAMPLE, progress=False) == busi
    assert "already prepared" in capsys.readouterr().out
    assert {p: p.stat().st_mtime_ns for p in busi.rglob("*")} == before


def test_source_may_be_a_zip(tmp_path):
    archive = shutil.make_archive(str(tmp_path / "Dataset_BUSI"), "zip", BUSI_SAMPLE)
    out = prepare("busi", tmp_path / "data", archive, progress=False, workers=1)
    assert {p.stem for p in (out / "images").iterdir()} == BUSI_NAMES
    # the extraction folder is gone, and nothing but the dataset is left in DATA_DIR
    assert [p.name for p in (tmp_path / "data").iterdir()] == ["busi"]


def test_interrupted_preparation_leaves_no_complete_looking_folder(tmp_path, monkeypatch):
    calls = {"n": 0}
    real = staging._convert

    def flaky(item, staging):
        calls["n"] += 1
        if calls["n"] == 5:
            raise KeyboardInterrupt  # as if the user pressed Ctrl-C mid-way
        return real(item, staging)

    monkeypatch.setattr(staging, "_convert", flaky)
    data = tmp_path / "data"
    with pytest.raises(KeyboardInterrupt):
        prepare("busi", data, BUSI_SAMPLE, progress=False, workers=1)
    assert list(data.iterdir()) == []  # neither busi/ nor a .partial folder
    monkeypatch.setattr(staging, "_convert", real)
    assert (prepare("busi", data, BUSI_SAMPLE, progress=False, workers=1) / "info.json").exists()


def test_stale_partial_folder_is_removed_and_damaged_folder_needs_force(tmp_path, busi, capsys):
    data = tmp_path / "data"
    shutil.copytree(busi, data / "busi")
    (data / ".busi.partial" / "images").mkdir(parents=True)
    (data / "busi" / "images" / f"{BENIGN[0]}.png").unlink()
    with pytest.raises(PreparationError, match="--force"):
        prepare("busi", data, BUSI_SAMPLE, progress=False)
    assert not (data / ".busi.partial").exists()
    assert (
        f"removed {data / '.busi.partial'}, left by an interrupted run" in capsys.readouterr().out
    )
    out = prepare("busi", data, BUSI_SAMPLE, force=True, progress=False, workers=1)
    assert (out / "images" / f"{BENIGN[0]}.png").exists()
    assert [p.name for p in data.iterdir()] == ["busi"]


def test_a_replacement_cut_between_its_renames_is_finished_by_the_next_run(
    tmp_path, busi, monkeypatch, capsys
):
    data = tmp_path / "data"
    shutil.copytree(busi, data / "busi")
    (data / "busi" / "images" / f"{BENIGN[0]}.png").unlink()  # damaged: --force replaces it
    replace = os.replace

    def killed_between_the_renames(src, dst):
        if Path(src).name == ".busi.ready":
            raise KeyboardInterrupt  # stands in for kill -9 once busi/ was moved aside
        return replace(src, dst)

    monkeypatch.setattr(atomic.os, "replace", killed_between_the_renames)
    with pytest.raises(KeyboardInterrupt):
        prepare("busi", data, BUSI_SAMPLE, force=True, progress=False, workers=1)
    monkeypatch.undo()
    assert sorted(p.name for p in data.iterdir()) == [".busi.old", ".busi.ready"]
    capsys.readouterr()
    assert prepare("busi", data, BUSI_SAMPLE, progress=False) == data / "busi"
    assert "already prepared" in capsys.readouterr().out  # the new, complete one
    assert (data / "busi" / "images" / f"{BENIGN[0]}.png").exists()
    assert [p.name for p in data.iterdir()] == ["busi"]


def test_the_prepared_folder_follows_the_umask(tmp_path):
    previous = os.umask(0o022)
    try:
        out = prepare("busi", tmp_path / "data", BUSI_SAMPLE, progress=False, workers=1)
    finally:
        os.umask(previous)
    for folder in (out, out / "images", out / "masks"):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o755, folder
    assert stat.S_IMODE((out / "info.json").stat().st_mode) == 0o644
    assert stat.S_IMODE((out / "masks" / f"{BENIGN[0]}.png").stat().st_mode) == 0o644


def test_refuses_another_datasets_folder(tmp_path, busi):
    data = tmp_path / "data"
    shutil.copytree(busi, data / "ham10000")  # a folder whose info.json says "busi"
    with pytest.raises(PreparationError, match="holds a prepared 'busi'"):
        prepare("ham10000", data, HAM_SAMPLE, progress=False)
    with pytest.raises(PreparationError, match="--root must be the parent"):
        prepare("busi", data / "ham10000", BUSI_SAMPLE, progress=False)
    (data / "busi").mkdir()
    (data / "busi" / "my_notes.txt").write_text("not a preparation")
    with pytest.raises(PreparationError, match="no info.json"):
        prepare("busi", data, BUSI_SAMPLE, progress=False, force=True)
    assert (data / "busi" / "my_notes.txt").exists()  # never deleted, even with --force


def test_missing_mask_and_size_mismatch_name_the_files(tmp_path):
    image = busi_raw(BENIGN[0])
    src = tmp_path / "raw" / "benign"
    src.mkdir(parents=True)
    shutil.copy(image, src / image.name)
    with pytest.raises(PreparationError, match=re.escape(image.name)):
        prepare("busi", tmp_path / "data", tmp_path / "raw", progress=False)
    _png(src / f"{image.stem}_mask.png", np.zeros((10, 10), np.uint8))
    with pytest.raises(
        PreparationError, match="size mismatch.*" + re.escape(f"{image.stem}_mask.png")
    ):
        prepare("busi", tmp_path / "data", tmp_path / "raw", progress=False)
    assert not any((tmp_path / "data").iterdir())


# ----------------------------------------------------------------------------------------------
# HAM10000, BUS, Kvasir-Instrument
# ----------------------------------------------------------------------------------------------


def test_ham10000_sample(tmp_path):
    out = prepare("ham10000", tmp_path, HAM_SAMPLE, progress=False, workers=1)
    info = json.loads((out / "info.json").read_text())
    names = sorted(p.stem for p in (out / "images").iterdir())
    assert names == sorted(p.stem for p in (HAM_SAMPLE / "images").iterdir())
    assert all(n.startswith("ISIC_") for n in names) and info["counts"]["images"] == 5
    assert info["licence"] == "CC BY-NC 4.0" and "HAM10000" in info["citation"]
    for n in names:
        ours = np.asarray(Image.open(out / "masks" / f"{n}.png"))
        raw = np.asarray(Image.open(HAM_SAMPLE / "masks" / f"{n}_segmentation.png"))
        assert ours.shape == (450, 600) and set(np.unique(ours)) <= {0, 255}
        assert (ours == np.where(raw > 127, 255, 0)).all()
        assert Image.open(out / "images" / f"{n}.png").mode == "RGB"


def test_ham10000_metadata_gives_classes(tmp_path):
    src = tmp_path / "raw"
    shutil.copytree(HAM_SAMPLE, src)
    ids = sorted(p.stem for p in (src / "images").iterdir())
    rows = ["lesion_id,image_id,dx,dx_type,age,sex,localization"]
    rows += [
        f"HAM_{i},{n},{'mel' if i % 2 else 'nv'},histo,50,male,back" for i, n in enumerate(ids)
    ]
    (src / "HAM10000_metadata.csv").write_text("\n".join(rows) + "\n")
    out = prepare("ham10000", tmp_path / "data", src, progress=False, workers=1)
    info = json.loads((out / "info.json").read_text())
    assert info["classes"] == {n: ("mel" if i % 2 else "nv") for i, n in enumerate(ids)}


def test_bus_from_original_and_gt_folders(tmp_path):
    names = [f"{i:06d}" for i in range(1, 6)]
    _pairs(tmp_path / "DatasetB", names, "original", "GT")
    archive = shutil.make_archive(str(tmp_path / "DatasetB"), "zip", tmp_path, "DatasetB")
    out = prepare("bus", tmp_path / "data", archive, progress=False, workers=1)
    assert sorted(p.stem for p in (out / "images").iterdir()) == names
    assert np.asarray(Image.open(out / "masks" / "000003.png"))[5, 6] == 255


def test_parallel_conversion(tmp_path):
    names = [f"{i:06d}" for i in range(1, 41)]  # enough items for the process pool
    _pairs(tmp_path / "raw", names, "original", "GT")
    out = prepare("bus", tmp_path / "data", tmp_path / "raw", progress=False, workers=2)
    info = json.loads((out / "info.json").read_text())
    assert info["counts"]["images"] == 40 and len(list((out / "masks").iterdir())) == 40
    assert info["items"]["000040"]["height"] == 20


def test_bus_without_source_explains_how_to_request(tmp_path, capsys):
    with pytest.raises(ManualDownloadRequired, match="--source"):
        prepare("bus", tmp_path, None)
    assert main(["bus", "--root", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "on request" in err and "python -m data_download bus --root" in err
    assert not (tmp_path / "bus").exists()


def _add_bytes(tf: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tf.addfile(info, io.BytesIO(data))


def test_kvasir_nested_archives_and_official_split(tmp_path):
    names = ["ckcu8ty6z00003b5yzfaezbs5", "ckcu9h4d100033b5yv5r3w9x8", "ckcuaipz0000z3b5y4r0kv1bq"]
    raw = tmp_path / "raw"
    _pairs(raw, names, "images", "masks", ext=".jpg")
    inner = tmp_path / "kvasir-instrument"
    inner.mkdir()
    for part in ("images", "masks"):
        with tarfile.open(inner / f"{part}.tar.gz", "w:gz") as tf:
            tf.add(raw / part, arcname=part)
    (inner / "train.txt").write_text(f"{names[0]}\n{names[1]}\n")
    (inner / "test.txt").write_text(f"{names[2]}\n")
    outer = tmp_path / "kvasir-instrument.tar.gz"
    with tarfile.open(outer, "w:gz") as tf:
        tf.add(inner, arcname="kvasir-instrument")
    out = prepare("kvasir_instrument", tmp_path / "data", outer, progress=False, workers=1)
    info = json.loads((out / "info.json").read_text())
    assert sorted(p.stem for p in (out / "images").iterdir()) == sorted(names)
    assert info["official_split"] == {"train": names[:2], "test": names[2:]}
    # Also from the folder itself: its inner archives are extracted elsewhere, not in place.
    out2 = prepare("kvasir_instrument", tmp_path / "data2", inner, progress=False, workers=1)
    assert len(list((out2 / "masks").iterdir())) == 3
    assert sorted(p.name for p in inner.iterdir()) == [
        "images.tar.gz",
        "masks.tar.gz",
        "test.txt",
        "train.txt",
    ]


def test_unsafe_member_in_source_archive_is_refused(tmp_path):
    bad = tmp_path / "bad.zip"
    with zipfile.ZipFile(bad, "w") as zf:
        zf.writestr("original/000001.png", b"x")
        zf.writestr("../../escaped.png", b"x")
    with pytest.raises(ValueError, match=r"\.\./\.\./escaped\.png"):
        prepare("bus", tmp_path / "data", bad, progress=False)
    assert not (tmp_path.parent / "escaped.png").exists()
    assert main(["bus", "--root", str(tmp_path / "data"), "--source", str(bad)]) == 2


# ----------------------------------------------------------------------------------------------
# Hostile sources: leftovers of a hard kill, odd masks, another dataset's files
# ----------------------------------------------------------------------------------------------


def test_stale_extract_folders_are_removed_like_partial_ones(tmp_path, capsys):
    data = tmp_path / "data"
    stale = data / ".busi.extract-k1ll3d"
    (stale / "in0").mkdir(parents=True)
    (stale / "in0" / "big.bin").write_bytes(b"x" * 1000)
    prepare("busi", data, BUSI_SAMPLE, progress=False, workers=1)
    assert not stale.exists()
    assert f"removed {stale}, left by an interrupted run" in capsys.readouterr().out


def test_preparation_names_masks_that_are_not_0_1_or_0_255(tmp_path, capsys):
    members = bus_members(3)
    members["GT/000002.png"] = png_bytes(soft_disc(100)[0][:20, :24])
    out = prepare("bus", tmp_path / "data", make_zip(tmp_path / "b.zip", members), progress=False)
    stdout = capsys.readouterr().out
    line = next(x for x in stdout.splitlines() if x.startswith("warning:"))
    assert "1 of 3 bus masks" in line and "GT/000002.png" in line and "README" in line
    assert np.asarray(Image.open(out / "masks" / "000002.png")).max() == 255  # not emptied
    info = json.loads((out / "info.json").read_text())
    assert "mask_values" in info["items"]["000002"]
    assert "mask_values" not in info["items"]["000001"]


def test_busi_tree_given_as_bus_is_refused_with_the_busi_command(tmp_path):
    with pytest.raises(PreparationError) as e:
        prepare("bus", tmp_path / "data", BUSI_SAMPLE, progress=False)
    message = str(e.value)
    assert "looks like BUSI" in message and "benign (" in message
    assert f"python -m data_download busi --root {tmp_path / 'data'} --source" in message
    assert not (tmp_path / "data" / "bus").exists()


def test_ham10000_given_as_busi_is_refused_with_the_ham10000_command(tmp_path):
    with pytest.raises(PreparationError, match="looks like HAM10000.*data_download ham10000"):
        prepare("busi", tmp_path / "data", HAM_SAMPLE, progress=False)
