"""Issue 12, data side: hostile and damaged inputs to ``python -m data_download``.

Bounded extraction (zip bombs, nested archives), damaged archives, bad files inside archives,
masks on other scales, another dataset's files, unwritable or odd data folders, and processes
left behind by a hard kill. Faults that would need root (a read-only mount, a full disk) are
injected by monkeypatching.
"""

from __future__ import annotations

import errno
import importlib
import io
import json
import os
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import PIL.Image
import pytest
from _paths import BUSI_SAMPLE, HAM_SAMPLE
from PIL import Image

from data_download import PreparationError, extract, prepare, staging
from data_download.__main__ import main
from data_download.extract import (
    ArchiveTooLargeError,
    BadArchiveError,
    ExtractLimit,
    extract_nested,
    safe_extract,
)
from wavegms.data.images import load_image, load_mask

REPO = Path(__file__).resolve().parents[1]


def _png_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


def _bus_members(n: int = 3, mask_value: int = 255) -> dict[str, bytes]:
    """A tiny BUS-like dataset: original/00000k.png + GT/00000k.png."""
    rng = np.random.default_rng(0)
    members = {}
    for k in range(1, n + 1):
        mask = np.zeros((20, 24), np.uint8)
        mask[4:12, 5:15] = mask_value
        members[f"original/{k:06d}.png"] = _png_bytes(rng.integers(0, 256, (20, 24), np.uint8))
        members[f"GT/{k:06d}.png"] = _png_bytes(mask)
    return members


def _zip(path: Path, members: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", method) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err and "\n" not in err and "Traceback" not in err, err
    return err


# ----------------------------------------------------------------------------------------------
# 5. Extraction is bounded: declared sizes, expansion ratio, nested archives, an override flag
# ----------------------------------------------------------------------------------------------


def test_zip_bomb_is_refused_before_anything_is_written(tmp_path, monkeypatch):
    monkeypatch.setattr(extract, "RATIO_FLOOR", 1 << 20)  # a 4 MB bomb stands for a 4 GB one
    bomb = _zip(tmp_path / "bomb.zip", {"zeros.bin": bytes(4 << 20)})
    with pytest.raises(ArchiveTooLargeError, match=r"bomb\.zip.*decompression bomb") as e:
        safe_extract(bomb, tmp_path / "out", progress=False)
    assert "--max-extract-gb" in str(e.value)
    assert list((tmp_path / "out").iterdir()) == []


def test_byte_budget_is_checked_on_declared_sizes_before_writing(tmp_path):
    rng = np.random.default_rng(1)
    archive = _zip(tmp_path / "a.zip", {f"f{k}.bin": rng.bytes(800) for k in range(2)})
    with pytest.raises(ArchiveTooLargeError, match=r"a\.zip.*1600.*limit|a\.zip.*limit"):
        safe_extract(archive, tmp_path / "out", progress=False, limit=ExtractLimit(1000))
    assert list((tmp_path / "out").iterdir()) == []
    # Within budget it extracts, and counts what it wrote.
    limit = ExtractLimit(2000)
    safe_extract(archive, tmp_path / "ok", progress=False, limit=limit)
    assert limit.written == 1600


def test_nested_archives_share_one_budget(tmp_path):
    inner = _zip(tmp_path / "inner.zip", {"data.bin": os.urandom(3000)}, zipfile.ZIP_STORED)
    outer = _zip(tmp_path / "outer.zip", {"inner.zip": inner.read_bytes()}, zipfile.ZIP_STORED)
    limit = ExtractLimit(5000)
    out = safe_extract(outer, tmp_path / "out", progress=False, limit=limit)
    with pytest.raises(ArchiveTooLargeError, match=r"inner\.zip"):
        extract_nested(out, progress=False, limit=limit)
    assert not (out / "inner.extracted" / "data.bin").exists()


def test_headers_that_understate_sizes_cannot_write_more_than_declared(tmp_path):
    payload = os.urandom(5000)
    archive = _zip(tmp_path / "liar.zip", {"big.bin": payload}, zipfile.ZIP_STORED)
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
    members = {**_bus_members(), "readme.txt": bytes(8 << 20)}  # compresses 1000-fold
    archive = _zip(tmp_path / "DatasetB.zip", members)
    args = ["bus", "--root", str(tmp_path / "data"), "--source", str(archive), "--quiet"]
    assert main(args) == 2
    err = _one_line_error(capsys)
    assert "DatasetB.zip" in err and "--max-extract-gb" in err
    assert not any((tmp_path / "data").glob(".bus.extract-*"))
    assert main([*args, "--max-extract-gb", "1"]) == 0
    assert len(list((tmp_path / "data" / "bus" / "masks").iterdir())) == 3
    # A limit set by hand is a limit too.
    assert main([*args, "--root", str(tmp_path / "d2"), "--max-extract-gb", "0.001"]) == 2
    assert "1.0 MB limit" in _one_line_error(capsys)


# ----------------------------------------------------------------------------------------------
# 6. A hard kill leaks neither extract folders nor processes
# ----------------------------------------------------------------------------------------------


def test_stale_extract_folders_are_removed_like_partial_ones(tmp_path, capsys):
    data = tmp_path / "data"
    stale = data / ".busi.extract-k1ll3d"
    (stale / "in0").mkdir(parents=True)
    (stale / "in0" / "big.bin").write_bytes(b"x" * 1000)
    prepare("busi", data, BUSI_SAMPLE, progress=False, workers=1)
    assert not stale.exists()
    assert f"removed {stale}, left by an interrupted run" in capsys.readouterr().out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")  # a zombie has exited; only its parent has not reaped it


def _children(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc (Linux)")
def test_pool_workers_exit_when_the_parent_is_killed(tmp_path):
    script = (
        "import sys, time\n"
        "from data_download.pool import process_pool\n"
        "pool = process_pool(2)\n"
        "list(pool.map(time.sleep, [0.2, 0.2]))\n"  # both workers started and idle
        "print('ready', flush=True)\n"
        "time.sleep(120)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, env=env, cwd=tmp_path
    )
    try:
        assert proc.stdout.readline().strip() == "ready"
        children = _children(proc.pid)  # the two workers and the resource tracker
        assert len(children) >= 2
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        deadline = time.monotonic() + 15
        while any(_alive(c) for c in children) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not [c for c in children if _alive(c)]
    finally:
        proc.kill()
        for c in _children(proc.pid):
            if _alive(c):
                os.kill(c, signal.SIGKILL)


# ----------------------------------------------------------------------------------------------
# 7. One documented mask rule, and a warning for masks that are not 0/1 or 0/255
# ----------------------------------------------------------------------------------------------


def _soft_disc(top: int) -> tuple[np.ndarray, np.ndarray]:
    """An anti-aliased disc scaled to 0..top (many grey levels) and its true shape."""
    yy, xx = np.mgrid[:32, :32]
    coverage = np.clip((12.0 - np.hypot(yy - 15.5, xx - 15.5)) / 4.0, 0.0, 1.0)
    return np.rint(coverage * top).astype(np.uint8), coverage >= 0.5


@pytest.mark.parametrize("top", [1, 100, 255])
def test_two_level_masks_on_any_scale_keep_their_shape(tmp_path, top):
    shape = np.zeros((16, 16), bool)
    shape[3:9, 4:12] = True
    path = tmp_path / "m.png"
    Image.fromarray(np.where(shape, np.uint8(top), np.uint8(0))).save(path)
    np.testing.assert_array_equal(load_mask(path), shape)


@pytest.mark.parametrize("top", [100, 255])
def test_anti_aliased_masks_keep_their_shape(tmp_path, top):
    soft, shape = _soft_disc(top)
    assert np.unique(soft).size > 8  # a grey ramp, not a label map
    path = tmp_path / "m.png"
    Image.fromarray(soft).save(path)
    got = load_mask(path)
    assert got.sum() > 0.8 * shape.sum()
    assert (got != shape).mean() < 0.05  # at most the one-pixel rim differs


def test_preparation_names_masks_that_are_not_0_1_or_0_255(tmp_path, capsys):
    members = _bus_members(3)
    members["GT/000002.png"] = _png_bytes(_soft_disc(100)[0][:20, :24])
    out = prepare("bus", tmp_path / "data", _zip(tmp_path / "b.zip", members), progress=False)
    stdout = capsys.readouterr().out
    line = next(x for x in stdout.splitlines() if x.startswith("warning:"))
    assert "1 of 3 bus masks" in line and "GT/000002.png" in line and "README" in line
    assert np.asarray(Image.open(out / "masks" / "000002.png")).max() == 255  # not emptied
    info = json.loads((out / "info.json").read_text())
    assert "mask_values" in info["items"]["000002"]
    assert "mask_values" not in info["items"]["000001"]


# ----------------------------------------------------------------------------------------------
# 10. Messages that say what happened
# ----------------------------------------------------------------------------------------------


def test_random_zip_is_not_called_an_empty_dataset(tmp_path, capsys):
    junk = tmp_path / "Dataset_BUSI.zip"
    junk.write_bytes(os.urandom(4096))
    with pytest.raises(BadArchiveError, match=r"Dataset_BUSI\.zip.*(damaged|neither)") as e:
        prepare("busi", tmp_path / "data", junk, progress=False)
    assert "no busi images" not in str(e.value)
    assert main(["busi", "--root", str(tmp_path / "data"), "--source", str(junk)]) == 2
    assert "Dataset_BUSI.zip" in _one_line_error(capsys)


def test_zip_with_a_crc_error_is_one_line_naming_archive_and_member(tmp_path, capsys):
    archive = _zip(tmp_path / "DatasetB.zip", _bus_members(), zipfile.ZIP_STORED)
    data = bytearray(archive.read_bytes())
    with zipfile.ZipFile(archive) as zf:
        info = zf.getinfo("original/000002.png")
    # Flip one byte in the member's data: its CRC no longer matches.
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra) + 40
    data[start] ^= 0xFF
    archive.write_bytes(bytes(data))
    assert main(["bus", "--root", str(tmp_path / "data"), "--source", str(archive)]) == 2
    err = _one_line_error(capsys)
    assert "DatasetB.zip" in err and "original/000002.png" in err and "again" in err


def test_bad_image_inside_an_archive_names_the_archive_and_the_member(tmp_path):
    members = _bus_members()
    members["original/000002.png"] = b"not a png at all"
    archive = _zip(tmp_path / "DatasetB.zip", members)
    with pytest.raises(PreparationError) as e:
        prepare("bus", tmp_path / "data", archive, progress=False, workers=1)
    message = str(e.value)
    assert f"{archive}, member original/000002.png" in message
    assert ".bus.extract-" not in message and "--force" not in message
    assert "fresh copy" in message


def test_bad_image_in_a_nested_archive_names_every_level(tmp_path):
    members = _bus_members()
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
    archive = _zip(tmp_path / "DatasetB.zip", outer)
    with pytest.raises(PreparationError) as e:
        prepare("bus", tmp_path / "data", archive, progress=False, workers=1)
    assert f"{archive}, member B/original.tar.gz, member original/000002.png" in str(e.value)


def test_image_over_the_pixel_limit_in_a_source_is_not_called_corrupt(tmp_path, monkeypatch):
    monkeypatch.setattr(PIL.Image, "MAX_IMAGE_PIXELS", 100)  # the 20 x 24 images: 480 pixels
    archive = _zip(tmp_path / "DatasetB.zip", _bus_members())
    with pytest.raises(PreparationError) as e:
        prepare("bus", tmp_path / "data", archive, progress=False, workers=1)
    message = str(e.value)
    assert "too large (480 pixels" in message and "member original/000001.png" in message
    assert "corrupt" not in message and "--force" not in message


def test_image_over_the_pixel_limit_is_called_too_large(tmp_path, monkeypatch):
    path = tmp_path / "huge.png"
    Image.fromarray(np.zeros((40, 50), np.uint8)).save(path)
    monkeypatch.setattr(PIL.Image, "MAX_IMAGE_PIXELS", 500)  # 2000 pixels > 2 x 500
    for loader in (load_image, load_mask):
        with pytest.raises(ValueError) as e:
            loader(path)
        message = str(e.value)
        assert "huge.png" in message and "too large" in message and "2000 pixels" in message
        assert "500" in message and "corrupt" not in message


def test_archives_nested_deeper_than_the_limit_are_reported(tmp_path, capsys):
    level = _zip(tmp_path / "l4.zip", {"deep.txt": b"x"})
    for k in (3, 2, 1):
        level = _zip(tmp_path / f"l{k}.zip", {level.name: level.read_bytes()})
    out = safe_extract(level, tmp_path / "out", progress=False)  # holds l2.zip
    extract_nested(out, progress=False, max_depth=2)  # l2, l3 extracted; l4 is one too deep
    note = capsys.readouterr().out
    assert "deeper than 2 levels" in note and "l4.zip" in note


# ----------------------------------------------------------------------------------------------
# 11. Another dataset's files are refused with the right command
# ----------------------------------------------------------------------------------------------


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


# ----------------------------------------------------------------------------------------------
# 4. Errors a user can fix: one line, exit 2, the path and what to do
# ----------------------------------------------------------------------------------------------


def test_root_that_is_a_file(tmp_path, capsys):
    root = tmp_path / "data"
    root.write_text("oops")
    assert main(["busi", "--root", str(root), "--source", str(BUSI_SAMPLE)]) == 2
    err = _one_line_error(capsys)
    assert str(root) in err and "is a file" in err


@pytest.mark.parametrize(
    "content", ["[]", '["dataset"]', '"busi"', '{"dataset": "busi", "counts": []}']
)
@pytest.mark.parametrize("where", ["root", "target"])
def test_info_json_of_the_wrong_shape(tmp_path, capsys, content, where):
    root = tmp_path / "data"
    folder = root if where == "root" else root / "busi"
    folder.mkdir(parents=True)
    (folder / "info.json").write_text(content)
    code = main(["busi", "--root", str(root), "--source", str(BUSI_SAMPLE), "--quiet"])
    if where == "root" and "{" not in content:  # not a prepared folder: preparing is fine
        assert code == 0
    else:  # a dataset folder given as --root, or a target that is not a preparation
        assert code == 2
        assert str(folder) in _one_line_error(capsys)


def test_unwritable_root_is_one_line(tmp_path, capsys, monkeypatch):
    # Root ignores permission bits, so the refusal of a read-only folder is injected.
    def refuse(*args, dir=None, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied", dir)

    monkeypatch.setattr(tempfile, "mkdtemp", refuse)
    root = tmp_path / "data"
    assert main(["busi", "--root", str(root), "--source", str(BUSI_SAMPLE), "--quiet"]) == 2
    err = _one_line_error(capsys)
    assert "Permission denied" in err and str(root) in err and "--root" in err


def test_full_disk_is_one_line(tmp_path, capsys, monkeypatch):
    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(staging, "save_image_png", full)
    root = tmp_path / "data"
    args = ["busi", "--root", str(root), "--source", str(BUSI_SAMPLE), "--quiet", "--workers", "1"]
    assert main(args) == 2
    err = _one_line_error(capsys)
    assert "No space left" in err and "free some disk space" in err
    assert not list(root.glob(".busi.*"))  # staging and extract folders cleaned up


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
