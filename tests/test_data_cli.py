"""``python -m data_download``: help, exit codes, one end-to-end run from a local source, and
errors a user can fix (a bad --root, a full disk) in one line naming the path and what to do."""

from __future__ import annotations

import errno
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from _paths import BUSI_SAMPLE, HAM_SAMPLE
from sources import one_line_error

from data_download import staging
from data_download.__main__ import main

REPO = Path(__file__).resolve().parents[1]


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "data_download", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_help_lists_every_dataset():
    out = _run("--help")
    assert out.returncode == 0
    for name in ("busi", "bus", "kvasir_instrument", "ham10000", "gms_splits"):
        assert name in out.stdout


def test_dataset_help_gives_source_licence_and_options():
    out = _run("ham10000", "--help")
    assert out.returncode == 0
    for text in ("--root", "--source", "--force", "CC BY-NC 4.0", "dataverse.harvard.edu"):
        assert text in out.stdout


def test_bus_without_source_exits_nonzero_with_instructions(tmp_path):
    out = _run("bus", "--root", str(tmp_path))
    assert out.returncode == 2
    assert "--source" in out.stderr and "request" in out.stderr


def test_prepare_from_source_then_no_op(tmp_path, capsys):
    args = ["ham10000", "--root", str(tmp_path), "--source", str(HAM_SAMPLE), "--quiet"]
    assert main(args) == 0
    assert json.loads((tmp_path / "ham10000" / "info.json").read_text())["counts"]["images"] == 5
    assert main(args) == 0
    assert "already prepared" in capsys.readouterr().out


def test_errors_exit_2_with_one_line(tmp_path, capsys):
    assert main(["busi", "--root", str(tmp_path), "--source", str(tmp_path / "nope")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_root_that_is_a_file(tmp_path, capsys):
    root = tmp_path / "data"
    root.write_text("oops")
    assert main(["busi", "--root", str(root), "--source", str(BUSI_SAMPLE)]) == 2
    err = one_line_error(capsys)
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
        assert str(folder) in one_line_error(capsys)


def test_unwritable_root_is_one_line(tmp_path, capsys, monkeypatch):
    # Root ignores permission bits, so the refusal of a read-only folder is injected.
    def refuse(*args, dir=None, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied", dir)

    monkeypatch.setattr(tempfile, "mkdtemp", refuse)
    root = tmp_path / "data"
    assert main(["busi", "--root", str(root), "--source", str(BUSI_SAMPLE), "--quiet"]) == 2
    err = one_line_error(capsys)
    assert "Permission denied" in err and str(root) in err and "--root" in err


def test_full_disk_is_one_line(tmp_path, capsys, monkeypatch):
    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(staging, "save_image_png", full)
    root = tmp_path / "data"
    args = ["busi", "--root", str(root), "--source", str(BUSI_SAMPLE), "--quiet", "--workers", "1"]
    assert main(args) == 2
    err = one_line_error(capsys)
    assert "No space left" in err and "free some disk space" in err
    assert not list(root.glob(".busi.*"))  # staging and extract folders cleaned up
