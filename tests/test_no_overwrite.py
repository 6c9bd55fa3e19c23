"""No command writes over a file it did not make in this run (issue 22, items 1, 4 and 5):
``predict`` never replaces an input image with its mask, ``course`` never replaces a course
source with its executed copy, ``demo`` never writes over the user's files in its folders.
Each stops before writing anything, with one line saying what it would overwrite."""

from __future__ import annotations

import hashlib
from pathlib import Path

import nbformat
import numpy as np
import pytest
import torch
from PIL import Image
from runs import IMAGE_SIZE, make_run

from wavegms import WaveGMS
from wavegms.cli import main
from wavegms.course import runner
from wavegms.course.runner import run_course
from wavegms.engine.demo import run_demo
from wavegms.engine.predict import predict_files


def _snapshot(folder: Path) -> dict[str, str]:
    """Every file under ``folder``, by relative path, with a digest of its bytes."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture
def model(tiny_vae) -> WaveGMS:
    torch.manual_seed(0)
    return WaveGMS(tiny_vae, image_size=IMAGE_SIZE).eval()


@pytest.fixture
def scans(tmp_path) -> Path:
    folder = tmp_path / "scans"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name in ("a.png", "b.png"):
        Image.fromarray(rng.integers(0, 255, (40, 52), np.uint8)).save(folder / name)
    return folder


# ---- 1: predict ---------------------------------------------------------------------------------


def test_predict_into_the_folder_of_its_png_inputs_is_refused(scans, model, tmp_path):
    before = _snapshot(scans)
    with pytest.raises(ValueError) as error:
        predict_files(model, [scans], scans, progress=False)
    message = str(error.value)
    assert "would be written over the input image" in message and "--out" in message
    assert _snapshot(scans) == before, "the scans are untouched and nothing was added"


def test_cli_predict_into_the_input_folder_exits_2_with_one_line(scans, tiny_vae, tmp_path, capsys):
    run_dir = make_run(tmp_path / "run", tiny_vae)
    before = _snapshot(scans)
    argv = ["predict", "--checkpoint", str(run_dir), str(scans), "--out", str(scans)]
    assert main([*argv, "--no-progress", "--device", "cpu"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "written over the input image" in err
    assert _snapshot(scans) == before


def test_predict_never_writes_over_files_it_did_not_write(scans, model, tmp_path):
    truths = tmp_path / "ground_truth"  # masks named <stem>.png, as predict names its own
    truths.mkdir()
    Image.fromarray(np.zeros((40, 52), np.uint8)).save(truths / "a.png")
    before = _snapshot(truths)
    with pytest.raises(ValueError) as error:
        predict_files(model, [scans], truths, progress=False)
    assert (
        f"{truths / 'a.png'} would be written over a file that wavegms predict did not write"
        in (str(error.value))
    )
    assert _snapshot(truths) == before

    # Its own earlier outputs it may replace: run twice into one folder.
    out = tmp_path / "masks"
    for _ in range(2):
        report = predict_files(model, [scans], out, save_overlay=True, progress=False)
        assert len(report.written) == 2


def test_a_probability_file_and_a_mask_never_share_a_name(scans, model, tmp_path):
    (scans / "b.png").rename(scans / "a_prob.png")  # named like a.png's probability file
    out = tmp_path / "out"
    report = predict_files(model, [scans], out, save_probs=True, progress=False)
    assert len(report.written) == 2
    assert sorted(p.name for p in out.iterdir()) == [
        "a.png",
        "a_prob-2.png",
        "a_prob-2_prob.png",
        "a_prob.png",
    ]


# ---- 4: course ----------------------------------------------------------------------------------


def _source_notebooks(folder: Path) -> Path:
    """A course folder with a tiny 00_setup.ipynb source (instructor) and its student edition."""
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell("SEED = 0", metadata={"tags": ["parameters"]})]
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    (folder / "student").mkdir(parents=True)
    nbformat.write(notebook, folder / "00_setup.ipynb")
    nbformat.write(notebook, folder / "student" / "00_setup.ipynb")
    return folder


def test_course_out_on_the_sources_is_refused_before_anything_is_written(tmp_path):
    folder = _source_notebooks(tmp_path / "notebooks")
    before = _snapshot(folder)
    for source in (folder, folder / "student"):  # --out notebooks, either edition
        with pytest.raises(ValueError) as error:
            run_course("quick", folder, notebooks=["00"], source_dir=source)
        message = str(error.value)
        assert f"holds {folder / '00_setup.ipynb'}" in message and "did not execute" in message
        assert _snapshot(folder) == before and not (folder / "work").exists()

    # A notebook the course executed before is its own output: running again may replace it.
    executed = nbformat.read(folder / "00_setup.ipynb", as_version=4)
    executed.metadata["papermill"] = {"parameters": {}}
    out = tmp_path / "build"
    out.mkdir()
    nbformat.write(executed, out / "00_setup.ipynb")
    runner._check_out_dir(out, [folder / "00_setup.ipynb"])  # no error


def test_cli_course_out_on_the_sources_exits_2_with_one_line(tmp_path, monkeypatch, capsys):
    folder = _source_notebooks(tmp_path / "notebooks")
    before = _snapshot(folder)
    monkeypatch.setattr(runner, "notebooks_dir", lambda edition="instructor": folder)
    assert main(["course", "--out", str(folder), "--notebooks", "00"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "did not execute" in err and "--out" in err
    assert _snapshot(folder) == before


# ---- 5: demo ------------------------------------------------------------------------------------


@pytest.mark.parametrize("part", ["eval", "images", "predictions"])
def test_demo_refuses_a_folder_holding_the_users_files_in_its_parts(part, tmp_path, tiny_vae):
    out = tmp_path / "demo"
    (out / part).mkdir(parents=True)
    mine = out / part / ("summary.json" if part == "eval" else "scan.png")
    mine.write_text("the user's own file")
    with pytest.raises(ValueError) as error:
        run_demo(
            out,
            epochs=1,
            device="cpu",
            progress=False,
            tiny_vae=tiny_vae,
            synthetic_sizes=(8, 4, 4),
        )
    assert f"{part}/" in str(error.value) and "nothing was written" in str(error.value)
    assert mine.read_text() == "the user's own file"
    assert sorted(p.name for p in out.iterdir()) == [part], "no run/ was started"
