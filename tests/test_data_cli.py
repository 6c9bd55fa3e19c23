"""``python -m data_download``: help, exit codes, and one end-to-end run from a local source."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from _paths import HAM_SAMPLE

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
