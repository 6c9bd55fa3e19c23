"""``wavegms course`` checks what it is given before it writes anything, and names what is
wrong in one line (issue 22, items 12 and 13): a kernel that is not installed, a damaged
notebook; a cell that runs past its time limit is named with the way to raise it, and a slow
healthy course is never stopped by default (issue 21, item 4)."""

from __future__ import annotations

from pathlib import Path

import pytest

from wavegms.cli import main
from wavegms.course import runner
from wavegms.course.execution import CELL_TIMEOUT_S, resolve_cell_timeout
from wavegms.course.runner import CourseError, notebooks_dir, run_course


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


# ---- a cell's time limit (issue 21, item 4) ----------------------------------------------------


def _tiny_notebook(folder: Path, name: str, *cells: str) -> Path:
    """``folder/name``: a parameters cell (``SEED``), then ``cells``, for the python3 kernel."""
    import nbformat

    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell("SEED = 0", metadata={"tags": ["parameters"]})]
    notebook.cells += [nbformat.v4.new_code_cell(source) for source in cells]
    notebook.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    folder.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, folder / name)
    return folder / name


def _outputs(path: Path) -> list[list[dict]]:
    import nbformat

    return [cell.get("outputs", []) for cell in nbformat.read(path, as_version=4).cells]


def test_cell_timeouts_scale_with_the_profile_and_take_seconds_or_none():
    assert CELL_TIMEOUT_S == {"quick": 1800, "full": None}
    assert (
        resolve_cell_timeout("profile", "quick") == 1800
        and resolve_cell_timeout("profile", "full") is None
    )
    for no_limit in (0, "0", None, "none", "None"):
        assert resolve_cell_timeout(no_limit, "quick") is None
    assert resolve_cell_timeout("90", "full") == 90 and resolve_cell_timeout(2.5, "quick") == 2.5
    for bad in ("-1", -5, "soon", "inf", "nan"):
        with pytest.raises(ValueError, match=r"Invalid cell timeout .*0 or none for no limit"):
            resolve_cell_timeout(bad, "quick")


def test_the_cli_passes_its_cell_timeout_and_leaves_the_default_to_the_profile(
    tmp_path, monkeypatch, capsys
):
    given = []
    monkeypatch.setattr(runner, "run_course", lambda *args, **kw: given.append(kw["cell_timeout"]))
    for extra in ([], ["--cell-timeout", "3600"], ["--cell-timeout", "none"]):
        assert main(["course", "--profile", "full", "--out", str(tmp_path), *extra]) == 0
    assert given == ["profile", 3600, None]
    with pytest.raises(SystemExit):
        main(["course", "--cell-timeout", "-3"])
    assert "argument --cell-timeout: Invalid cell timeout '-3'" in capsys.readouterr().err


def test_a_cell_past_its_time_limit_is_named_on_its_own_line(tmp_path, monkeypatch, capfd, caplog):
    folder = tmp_path / "notebooks"
    _tiny_notebook(
        folder,
        "03_lmm_training.ipynb",
        "print('before')",
        "import time\nprint('sleeping', flush=True)\ntime.sleep(60)",
        "print('never')",
    )
    monkeypatch.setattr(runner, "notebooks_dir", lambda edition="x": folder)
    out = tmp_path / "course"
    argv = ["course", "--notebooks", "03", "--out", str(out), "--cell-timeout", "2"]
    assert main(argv) == 2
    printed = capfd.readouterr()
    executed = out / "03_lmm_training.ipynb"
    # papermill's parameters cell comes first, so the sleeping cell is cell 3 of the executed
    # notebook, and the fourth one run.
    expected = (
        "wavegms course: error: notebook 03_lmm_training.ipynb was stopped in cell 3 (In [4]): "
        "the cell ran past the time limit of 2 s per cell. The cell starts with: 'import time'. "
        "If it is only slow, give it more time: wavegms course --cell-timeout 3600 (0 or none: "
        "no limit). The executed notebook, with that cell's outputs up to the stop (no "
        f"traceback: the cell did not fail), is {executed} (and 03_lmm_training.html).\n"
    )
    assert printed.err == expected  # one line of its own, and nothing else on stderr
    # nbclient logs "Timeout waiting for execute reply" through papermill's logger, which
    # printed it inside the progress line; the message above says it, with the cell.
    assert not [r for r in caplog.records if "Timeout waiting" in r.getMessage()]
    assert "Timeout waiting" not in printed.out
    assert "03_lmm_training" in printed.out.splitlines()[-1] and "FAILED" in printed.out
    # What the message says the executed notebook holds, it holds: no error, no traceback.
    outputs = _outputs(executed)
    assert [o["text"] for o in outputs[3]] == ["sleeping\n"] and outputs[4] == []
    assert not [o for cell in outputs for o in cell if o["output_type"] == "error"]


def test_a_failing_cell_points_to_the_traceback_its_notebook_holds(tmp_path):
    folder = tmp_path / "notebooks"
    _tiny_notebook(folder, "02_tiny_vae_latents.ipynb", "x = 1", "ratio = SEED / 0")
    with pytest.raises(CourseError) as caught:
        run_course("quick", tmp_path / "out", notebooks=["02"], source_dir=folder, cell_timeout=60)
    message = str(caught.value)
    assert "failed in cell 3 (In [4]): ZeroDivisionError: division by zero." in message
    assert "with the traceback in that cell" in message and "time limit" not in message
    (error,) = [o for cell in _outputs(caught.value.executed) for o in cell if "ename" in o]
    assert error["ename"] == "ZeroDivisionError" and error["traceback"]
