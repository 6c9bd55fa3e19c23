"""``wavegms course`` checks what it is given before it writes anything, and names what is
wrong in one line (issue 22, items 12 and 13): a kernel that is not installed, a damaged
notebook."""

from __future__ import annotations

from pathlib import Path

import pytest

from wavegms.cli import main
from wavegms.course.runner import notebooks_dir, run_course


def test_an_unknown_kernel_is_one_line_and_leaves_no_folder(tmp_path, capsys):
    out = tmp_path / "course"
    argv = ["course", "--kernel", "nosuchkernel", "--notebooks", "00", "--out", str(out)]
    assert main(argv) == 2  # a NoSuchKernel traceback (exit 1) before
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "No Jupyter kernel named 'nosuchkernel'" in err and "python3" in err
    assert not out.exists(), "no empty work folder is left"


def test_a_truncated_notebook_is_named(tmp_path):
    source = notebooks_dir() / "00_setup.ipynb"
    folder = tmp_path / "notebooks"
    folder.mkdir()
    damaged = folder / "00_setup.ipynb"
    damaged.write_bytes(source.read_bytes()[:3000])
    out = tmp_path / "course"
    with pytest.raises(ValueError) as error:
        run_course("quick", out, notebooks=["00"], source_dir=folder)
    message = str(error.value)
    assert message.startswith(f"{damaged} is not a readable notebook") and "\n" not in message
    assert not out.exists()


def test_the_cli_names_a_truncated_notebook_in_one_line(tmp_path, monkeypatch, capsys):
    folder = tmp_path / "notebooks"
    folder.mkdir()
    damaged = folder / "03_lmm_training.ipynb"
    damaged.write_bytes((notebooks_dir() / damaged.name).read_bytes()[:500])
    monkeypatch.setattr("wavegms.course.runner.notebooks_dir", lambda edition="x": Path(folder))
    assert main(["course", "--notebooks", "03", "--out", str(tmp_path / "course")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(damaged) in err
