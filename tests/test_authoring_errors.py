"""Editing the course, when something is wrong (issue 22, items 4, 13, 14 and 15): every
message names the file (and the cell or line), and ``sync`` writes nothing while a problem
stands."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import nbformat
import pytest

from tools import authoring

NOTEBOOK_DIR = Path(__file__).resolve().parents[1] / "notebooks"


def _copy_course(tmp_path: Path) -> Path:
    folder = tmp_path / "notebooks"
    shutil.copytree(NOTEBOOK_DIR, folder, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    return folder


def _snapshot(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _run(command: str, folder: Path, capsys) -> tuple[int, list[str]]:
    code = authoring.main([command, "--notebooks", str(folder)])
    return code, capsys.readouterr().err.strip().splitlines()


@pytest.mark.parametrize("command", ["sync", "check"])
def test_a_truncated_notebook_is_named_in_one_line(command, tmp_path, capsys):
    folder = _copy_course(tmp_path)
    damaged = folder / "01_wavelets.ipynb"
    damaged.write_bytes(damaged.read_bytes()[:3000])
    before = _snapshot(folder)
    code, err = _run(command, folder, capsys)  # a NotJSONError traceback before
    assert code == 1
    assert any(line.startswith(f"{damaged} is not a readable notebook") for line in err)
    assert _snapshot(folder) == before


def test_a_solution_without_its_end_marker_names_the_notebook_and_cell(tmp_path, capsys):
    folder = _copy_course(tmp_path)
    source = folder / "00_setup.py"
    text = source.read_text()
    end = "decoder_share = decoder / total\n# END SOLUTION\n"
    assert text.count(end) == 1
    source.write_text(text.replace(end, "decoder_share = decoder / total\n"))
    before = _snapshot(folder)
    code, err = _run("sync", folder, capsys)
    assert code == 1
    (line,) = [line for line in err if "END SOLUTION" in line]
    assert line.startswith(f"{source}, cell ") and "'from torch.utils.flop_counter import" in line
    assert _snapshot(folder) == before


def test_a_cell_marker_typo_is_reported_and_nothing_is_rewritten(tmp_path, capsys):
    folder = _copy_course(tmp_path)
    source = folder / "02_tiny_vae_latents.py"
    lines = source.read_text().splitlines(keepends=True)
    number = lines.index('# %% tags=["parameters"]\n')
    lines[number] = '# %% tags=["parameters"\n'
    source.write_text("".join(lines))
    before = _snapshot(folder)
    code, err = _run("sync", folder, capsys)
    assert code == 1
    assert f"{source}, line {number + 1}: the cell marker" in err[0]
    assert "Nothing was written" in err[-1]
    assert _snapshot(folder) == before, "the tag is not dropped from the three files"


@pytest.mark.parametrize("command", ["sync", "check"])
def test_papermills_injected_parameters_cell_is_flagged(command, tmp_path, capsys):
    # `wavegms course --out notebooks` once saved the executed copy over the source.
    folder = _copy_course(tmp_path)
    path = folder / "00_setup.ipynb"
    notebook = nbformat.read(path, as_version=4)
    injected = nbformat.v4.new_code_cell(
        'OUT_DIR = "/home/someone/build/course/work"',
        metadata={"tags": ["injected-parameters"]},
    )
    index = next(
        i for i, c in enumerate(notebook.cells) if "parameters" in c.metadata.get("tags", [])
    )
    notebook.cells.insert(index + 1, injected)
    nbformat.write(notebook, path)
    before = _snapshot(folder)
    code, err = _run(command, folder, capsys)
    assert code == 1
    assert any(
        line.startswith(f"{path}, cell {index + 2} ") and "injected-parameters" in line
        for line in err
    )
    assert _snapshot(folder) == before, "the injected cell does not reach the .py or students"
