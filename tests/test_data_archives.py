"""Hostile and damaged archives given to ``python -m data_download``: bounded extraction (zip
bombs, nested archives, headers that lie), damaged archives and downloads, and bad files inside
archives, each reported in one line naming the archive and the member."""

from __future__ import annotations

import importlib
import io
import os
import tarfile
import zipfile
from dataclasses import replace

import numpy as np
import PIL.Image
import pytest
from _paths import BUSI_SAMPLE
from sources import bus_members, make_zip, one_line_error, png_bytes

from data_download import PreparationError, extract, prepare
from data_download.__main__ import main
from data_download.extract import (
    ArchiveTooLargeError,
    BadArchiveError,
    ExtractLimit,
    extract_nested,
    safe_extract,
)

# ----------------------------------------------------------------------------------------------
# Extraction is bounded: declared sizes, expansion ratio, nested archives, an override flag
# ----------------------------------------------------------------------------------------------


def test_zip_bomb_is_refused_before_anything_is_written(tmp_path, monkeypatch):
    monkeypatch.setattr(extract, "RATIO_FLOOR", 1 << 20)  # a 4 MB bomb stands for a 4 GB one
    bomb = make_zip(tmp_path / "bomb.zip", {"zeros.bin": bytes(4 << 20)})
    with pytest.raises(ArchiveTooLargeError, match=r"bomb\.zip.*decompression bomb") as e:
        safe_extract(bomb, tmp_path / "out", progress=False)
    assert "--max-extract-gb" in str(e.value)
    assert list((tmp_path / "out").iterdir()) == []


def test_byte_budget_is_checked_on_declared_sizes_before_writing(tmp_path):
    rng = np.random.default_rng(1)
    archive = make_zip(tmp_path / "a.zip", {f"f{k}.bin": rng.bytes(800) for k in range(2)})
    with pytest.raises(ArchiveTooLargeError, match=r"a\.zip.*1600.*limit|a\.zip.*limit"):
        safe_extract(archive, tmp_path / "out", progress=False, limit=ExtractLimit(1000))
    assert list((tmp_path / "out").iterdir()) == []
    # Within budget it extracts, and counts what it wrote.
    limit = ExtractLimit(2000)
    safe_extract(archive, tmp_path / "ok", progress=False, limit=limit)
    assert limit.written == 1600


def test_nested_archives_share_one_budget(tmp_path):
    inner = make_zip(tmp_path / "inner.zip", {"data.bin": os.urandom(3000)}, zipfile.ZIP_STORED)
    outer = make_zip(tmp_path / "outer.zip", {"inner.zip": inner.read_bytes()}, zipfile.ZIP_STORED)
    limit = ExtractLimit(5000)
    out = safe_extract(outer, tmp_path / "out", progress=False, limit=limit)
    with pytest.raises(ArchiveTooLargeError, match=r"inner\.zip"):
        extract_nested(out, progress=False, limit=limit)
    assert not (out / "inner.extracted" / "data.bin").exists()


def test_headers_that_understate_sizes_cannot_write_more_than_declared(tmp_path):
    payload = os.urandom(5000)
    archive = make_zip(tmp_path / "liar.zip", {"big.bin": payload}, zipfile.ZIP_STORED)
    data = bytearray(archive.read_bytes())
    central = data.index(b"PK\x01\x02")
    data[central + 24 : central + 28] = (10).to_bytes(4, "little")  # "10 bytes", it says
    archive.write_bytes(bytes(data))
    limit = ExtractLimit(1000)  # the declared 10 bytes pass the budget check...
    with pytest.raises(BadArchiveError, match=r"liar\.zip.*big\.bin"):
        safe_extract(archive, tmp_path / "out", progress=False, limit=limit)
    assert limit.written <= 10  # ...and no more than that was ever counted or written
    assert not (tmp_path / "out" / "big.bin").exists()


def test_cli_refuses_a_bomb_in_one_line_and_the_flag_lets_a_genuine_archive_through(
    tmp_path, monkeypatch, capsys
):
    monkeypatch.setattr(extract, "RATIO_FLOOR", 1 << 20)
    members = {**bus_members(), "readme.txt": bytes(8 << 20)}  # compresses 1000-fold
    archive = make_zip(tmp_path / "DatasetB.zip", members)
    args = ["bus", "--root", str(tmp_path / "data"), "--source", str(archive), "--quiet"]
    assert main(args) == 2
    err = one_line_error(capsys)
    assert "DatasetB.zip" in err and "--max-extract-gb" in err
    assert not any((tmp_path / "data").glob(".bus.extract-*"))
    assert main([*args, "--max-extract-gb", "1"]) == 0
    assert len(list((tmp_path / "data" / "bus" / "masks").iterdir())) == 3
    # A limit set by hand is a limit too.
    assert main([*args, "--root", str(tmp_path / "d2"), "--max-extract-gb", "0.001"]) == 2
    assert "1.0 MB limit" in one_line_error(capsys)


# ----------------------------------------------------------------------------------------------
# Damaged archives and bad files inside them: messages that say what happened
# ----------------------------------------------------------------------------------------------


def test_random_zip_is_not_called_an_empty_dataset(tmp_path, capsys):
    junk = tmp_path / "Dataset_BUSI.zip"
    junk.write_bytes(os.urandom(4096))
    with pytest.raises(BadArchiveError, match=r"Dataset_BUSI\.zip.*(damaged|neither)") as e:
        prepare("busi", tmp_path / "data", junk, progress=False)
    assert "no busi images" not in str(e.value)
    assert main(["busi", "--root", str(tmp_path / "data"), "--source", str(junk)]) == 2
    assert "Dataset_BUSI.zip" in one_line_error(capsys)


def test_zip_with_a_crc_error_is_one_line_naming_archive_and_member(tmp_path, capsys):
    archive = make_zip(tmp_path / "DatasetB.zip", bus_members(), zipfile.ZIP_STORED)
    data = bytearray(archive.read_bytes())
    with zipfile.ZipFile(archive) as zf:
        info = zf.getinfo("original/000002.png")
    # Flip one byte in the member's data: its CRC no longer matches.
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra) + 40
    data[start] ^= 0xFF
    archive.write_bytes(bytes(data))
    assert main(["bus", "--root", str(tmp_path / "data"), "--source", str(archive)]) == 2
    err = one_line_error(capsys)
    assert "DatasetB.zip" in err and "original/000002.png" in err and "again" in err


def test_bad_image_inside_an_archive_names_the_archive_and_the_member(tmp_path):
    members = bus_members()
    members["original/000002.png"] = b"not a png at all"
    archive = make_zip(tmp_path / "DatasetB.zip", members)
    with pytest.raises(PreparationError) as e:
        prepare("bus", tmp_path / "data", archive, progress=False, workers=1)
    message = str(e.value)
    assert f"{archive}, member original/000002.png" in message
    assert ".bus.extract-" not in message and "--force" not in message
    assert "fresh copy" in message


def test_bad_image_in_a_nested_archive_names_every_level(tmp_path):
    members = bus_members()
    members["original/000002.png"] = b"not a png at all"
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, data in members.items():
            if name.startswith("original/"):
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
    outer = {f"B/{k}": v for k, v in members.items() if k.startswith("GT/")}
    outer["B/original.tar.gz"] = buf.getvalue()
    archive = make_zip(tmp_path / "DatasetB.zip", outer)
    with pytest.raises(PreparationError) as e:
        prepare("bus", tmp_path / "data", archive, progress=False, workers=1)
    assert f"{archive}, member B/original.tar.gz, member original/000002.png" in str(e.value)


def test_image_over_the_pixel_limit_in_a_source_is_not_called_corrupt(tmp_path, monkeypatch):
    monkeypatch.setattr(PIL.Image, "MAX_IMAGE_PIXELS", 100)  # the 20 x 24 images: 480 pixels
    archive = make_zip(tmp_path / "DatasetB.zip", bus_members())
    with pytest.raises(PreparationError) as e:
        prepare("bus", tmp_path / "data", archive, progress=False, workers=1)
    message = str(e.value)
    assert "too large (480 pixels" in message and "member original/000001.png" in message
    assert "corrupt" not in message and "--force" not in message


def test_archives_nested_deeper_than_the_limit_are_reported(tmp_path, capsys):
    level = make_zip(tmp_path / "l4.zip", {"deep.txt": b"x"})
    for k in (3, 2, 1):
        level = make_zip(tmp_path / f"l{k}.zip", {level.name: level.read_bytes()})
    out = safe_extract(level, tmp_path / "out", progress=False)  # holds l2.zip
    extract_nested(out, progress=False, max_depth=2)  # l2, l3 extracted; l4 is one too deep
    note = capsys.readouterr().out
    assert "deeper than 2 levels" in note and "l4.zip" in note


def test_damaged_download_is_deleted_so_the_next_run_fetches_it_again(tmp_path, monkeypatch):
    from data_download import busi
    from data_download.registry import Remote

    prepare_module = importlib.import_module("data_download.prepare")  # not the function

    data = tmp_path / "data"

    def fake_download(urls, dest, **kwargs):  # the server sent an error page, say
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(b"<html>503 Service Unavailable</html>")
        return dest

    remote = Remote("Dataset_BUSI.zip", ("https://example.invalid/Dataset_BUSI.zip",))
    monkeypatch.setattr(busi, "RECIPE", replace(busi.RECIPE, remote_files=lambda: [remote]))
    monkeypatch.setattr(prepare_module, "download", fake_download)
    with pytest.raises(BadArchiveError, match=r"Dataset_BUSI\.zip.*deleted.*again"):
        prepare("busi", data, progress=False)
    assert not (data / ".downloads" / "Dataset_BUSI.zip").exists()


@pytest.mark.parametrize("value", ["-1", "0", "nan", "inf"])
def test_an_impossible_extraction_limit_is_refused_before_anything_happens(tmp_path, capsys, value):
    root = tmp_path / "data"
    args = ["busi", "--root", str(root), "--source", str(BUSI_SAMPLE), "--quiet"]
    assert main([*args, "--max-extract-gb", value]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--max-extract-gb must be a positive number" in err
    assert not root.exists()


def test_files_of_a_refused_archive_are_named_as_the_archive_has_them(tmp_path, capsys):
    # Masks that belong to other images: the extraction folder is gone when the error is read.
    blank = png_bytes(np.zeros((20, 20), np.uint8))
    folder = "Dataset_BUSI_with_GT/benign"
    members = {f"{folder}/benign ({k}).png": blank for k in (1, 2)}
    members |= {f"{folder}/benign ({k})_mask.png": blank for k in (3, 4)}
    archive = make_zip(tmp_path / "Dataset_BUSI.zip", members)
    args = ["busi", "--root", str(tmp_path / "data"), "--source", str(archive), "--quiet"]
    assert main(args) == 2
    err = one_line_error(capsys)
    assert f"{archive}, member {folder}/benign (1).png" in err, err
    assert ".busi.extract-" not in err
