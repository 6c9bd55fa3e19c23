"""The course: every notebook runs top to bottom (papermill and nbval), carries no outputs,
has its badge, install and parameters cells, and is in step with its source and student edition."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import matplotlib
import nbformat
import pytest

from wavegms import authoring, course, course_runner
from wavegms.course import NOTEBOOKS, PROFILES
from wavegms.course_runner import CourseError, run_course

matplotlib.use("Agg")

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = REPO / "notebooks"
BADGE = "https://colab.research.google.com/github/wavegms/wavegms/blob/main/notebooks/student/{}"
PARAMETERS = (*PROFILES["quick"], "OUT_DIR")


def _read(name: str) -> nbformat.NotebookNode:
    return nbformat.read(NOTEBOOK_DIR / name, as_version=4)


def _tagged(notebook: nbformat.NotebookNode, tag: str) -> list[nbformat.NotebookNode]:
    return [cell for cell in notebook.cells if tag in cell.metadata.get("tags", [])]


def _listing(folder: Path) -> set[str]:
    return {str(path.relative_to(folder)) for path in folder.rglob("*")}


# ---- the committed files ----------------------------------------------------------------------


def test_sources_notebooks_and_student_edition_are_in_step():
    problems = authoring.sync(NOTEBOOK_DIR, check=True)
    assert not problems, "\n".join(problems) + "\nrun `python -m wavegms.authoring sync`"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_committed_notebook_has_no_outputs_or_execution_counts(name):
    notebook = _read(name)
    nbformat.validate(notebook)
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{name} cell {index} has outputs"
            assert cell.execution_count is None, f"{name} cell {index} has an execution count"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_has_badge_install_and_parameters_cells(name):
    notebook = _read(name)
    assert notebook.cells[0].cell_type == "markdown"
    assert f"]({BADGE.format(name)})" in notebook.cells[0].source, "no Colab badge for its own path"

    (install,) = _tagged(notebook, "install")
    assert '"google.colab" in sys.modules' in install.source
    assert '"wavegms[notebooks] @ git+https://github.com/wavegms/wavegms"' in install.source
    pip_lines = [
        line for line in install.source.splitlines() if "pip" in line and "install" in line
    ]
    assert pip_lines and not any("torch" in line for line in pip_lines), "never reinstall torch"
    assert 'pip install -e ".[notebooks]"' in install.source  # what to do locally

    (parameters,) = _tagged(notebook, "parameters")
    values = {
        node.targets[0].id: ast.literal_eval(node.value)
        for node in ast.parse(parameters.source).body
        if isinstance(node, ast.Assign)
    }
    assert tuple(values)[: len(PARAMETERS)] == PARAMETERS
    # nbval and Colab run the defaults: they must be the CPU quick profile.
    assert {k: values[k] for k in PROFILES["quick"]} == PROFILES["quick"]
    assert values["OUT_DIR"] is None
    assert notebook.cells.index(install) < notebook.cells.index(parameters)


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_states_objectives_times_and_exercises_with_solutions(name):
    text = "\n".join(cell.source for cell in _read(name).cells if cell.cell_type == "markdown")
    assert "**Learning objectives.**" in text
    assert "CPU quick mode" in text and "Colab T4" in text and "estimate" in text
    assert "### Exercise 1" in text and "<summary><b>Solution</b>" in text


# ---- the runner, without running anything ---------------------------------------------------


def test_runner_rejects_unknown_profiles_parameters_and_notebooks(tmp_path):
    with pytest.raises(ValueError, match="profile 'slow'"):
        run_course("slow", tmp_path)
    with pytest.raises(ValueError, match="EPOCH"):
        run_course("quick", tmp_path, parameters={"EPOCH": 3})
    with pytest.raises(ValueError, match="'9'"):
        run_course("quick", tmp_path, notebooks=["9"])
    assert not any(tmp_path.iterdir()), "nothing is written before the arguments are checked"


def test_full_profile_needs_the_dataset_prepared(tmp_path, capsys):
    from wavegms.cli import main

    status = main(["course", "--profile", "full", "--data", str(tmp_path), "--out", str(tmp_path)])
    message = capsys.readouterr().err
    assert status == 2
    assert f"python -m data_download busi --root {tmp_path}" in message


def test_notebooks_fall_back_to_synthetic_data_with_the_prepare_command(tmp_path, capsys):
    session = course.start("bus", tmp_path / "data", device="cpu", out_dir=tmp_path / "out")
    printed = capsys.readouterr().out
    assert session.dataset == "synthetic" and session.requested == "bus"
    assert f"python -m data_download bus --root {tmp_path / 'data'}" in printed
    assert (tmp_path / "out").is_dir()
    with pytest.raises(ValueError, match="DATASET='mnist'"):
        course.start("mnist", tmp_path, out_dir=tmp_path / "out")


def test_a_real_dataset_is_used_when_prepared(tmp_path):
    from wavegms.data import SyntheticDataset

    SyntheticDataset(3, image_size=32).export(tmp_path / "busi")
    session = course.start("busi", tmp_path, device="cpu", out_dir=tmp_path / "out")
    assert session.dataset == "busi"
    batch = course.sample_batch(session, 2, 32)
    assert batch["image"].shape == (2, 3, 32, 32) and batch["mask"].shape == (2, 1, 32, 32)


def test_ensure_trained_resumes_through_train_and_refuses_other_settings(tmp_path):
    from wavegms.checkpoint import TRAIN_CONFIG, TRAINING_STATE
    from wavegms.config import preset

    preset("quick", image_size=32).save(tmp_path / TRAIN_CONFIG)
    (tmp_path / "last").mkdir()
    (tmp_path / "last" / TRAINING_STATE).touch()  # a run that finished an epoch
    with pytest.raises(ValueError, match="Cannot change image_size: 32 -> 64"):
        course.ensure_trained(preset("quick", image_size=64), tmp_path)


def test_browse_draws_a_static_figure_without_widgets(monkeypatch):
    import matplotlib.pyplot as plt

    from wavegms import widgets

    monkeypatch.setenv(widgets.NO_WIDGETS_ENV, "1")
    calls = []

    def draw(level=0, band="LL"):
        calls.append((level, band))
        fig, ax = plt.subplots()
        ax.set_title(f"{level} {band}")
        return fig

    widgets.browse(draw, {"level": [1, 2], "band": ["LL", "H"]}, static={"band": "H"})
    assert calls == [(1, "H")]
    plt.close("all")


def test_browse_redraws_when_a_control_changes(monkeypatch):
    import ipywidgets
    import matplotlib.pyplot as plt

    from wavegms import widgets

    monkeypatch.setattr(widgets, "widgets_available", lambda: True)  # as inside a live kernel
    shown = []
    monkeypatch.setattr("IPython.display.display", shown.append)
    calls = []

    def draw(level=0, band="LL"):
        calls.append((level, band))
        return plt.figure()

    widgets.browse(draw, {"level": [1, 2], "band": ["LL", "H"]}, static={"band": "H"})
    (panel,) = [item for item in shown if isinstance(item, ipywidgets.interactive)]
    level, band = panel.children[:2]
    assert isinstance(level, ipywidgets.SelectionSlider) and isinstance(band, ipywidgets.Dropdown)
    assert calls == [(1, "H"), (1, "LL")]  # the static figure, then the panel's first drawing
    level.value = 2
    band.value = "H"
    assert calls[2:] == [(2, "LL"), (2, "H")]
    plt.close("all")


def test_the_course_switches_widgets_off_only_while_it_runs(monkeypatch):
    from wavegms import widgets

    monkeypatch.delenv(widgets.NO_WIDGETS_ENV, raising=False)
    with course_runner._widgets_off():
        assert os.environ[widgets.NO_WIDGETS_ENV] == "1"  # what the kernels it starts inherit
        assert not widgets.widgets_available()
    assert widgets.NO_WIDGETS_ENV not in os.environ


# ---- executing the course ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def executed_course(tmp_path_factory):
    """The whole course run once in quick mode, as `wavegms course` runs it."""
    before = _listing(NOTEBOOK_DIR)
    out = tmp_path_factory.mktemp("course")
    paths = run_course("quick", out)
    assert _listing(NOTEBOOK_DIR) == before, "running the course wrote into notebooks/"
    return out, paths


@pytest.mark.notebooks
def test_every_notebook_runs_in_quick_mode_with_static_figures(executed_course):
    out, paths = executed_course
    assert [path.name for path in paths] == list(NOTEBOOKS)
    for path in paths:
        assert path.with_suffix(".html").stat().st_size > 10_000
        notebook = nbformat.read(path, as_version=4)
        outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
        assert not [o for o in outputs if o.output_type == "error"], path.name
        # Widgets render nothing headless: every notebook still shows its figures as PNGs.
        assert any("image/png" in o.get("data", {}) for o in outputs), f"{path.name}: no figure"


@pytest.mark.notebooks
def test_the_course_trains_evaluates_and_predicts_for_real(executed_course):
    out, _ = executed_course
    (run_dir,) = (out / "work").glob("run_synthetic_64px_*")
    assert (run_dir / "best" / "config.json").is_file() and (run_dir / "snapshots.pt").is_file()
    (summary_file,) = (out / "work" / "evaluation").glob("*/summary.json")
    summary = json.loads(summary_file.read_text())
    assert summary["n_images"] == course.QUICK_SYNTHETIC_SIZES[2]
    assert summary["dice_mean"] > 0.3, "the quick run should learn to find the lesions"
    masks = sorted(p.name for p in (out / "work" / "my_predictions").glob("example_?.png"))
    assert masks == ["example_0.png", "example_1.png", "example_2.png"]


@pytest.mark.notebooks
def test_a_failing_cell_is_named_with_the_notebook(tmp_path):
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [
        nbformat.v4.new_code_cell("SEED = 0", metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell("x = 1"),
        nbformat.v4.new_code_cell("ratio = SEED / 0"),
    ]
    notebook.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(notebook, tmp_path / "02_tiny_vae_latents.ipynb")
    with pytest.raises(CourseError) as caught:
        run_course("quick", tmp_path / "out", notebooks=["02"], source_dir=tmp_path)
    message = str(caught.value)
    assert "notebook 02_tiny_vae_latents.ipynb failed in cell 3" in message  # after papermill's
    assert "ZeroDivisionError" in message and "ratio = SEED / 0" in message
    assert caught.value.executed == tmp_path / "out" / "02_tiny_vae_latents.ipynb"
    assert caught.value.executed.with_suffix(".html").is_file()


@pytest.mark.notebooks
def test_every_notebook_runs_under_nbval(tmp_path):
    """`pytest --nbval-lax notebooks/`: the notebooks' own defaults, as a student runs them."""
    before = _listing(NOTEBOOK_DIR)
    env = {**os.environ, course.COURSE_DIR_ENV: str(tmp_path), "HF_HUB_OFFLINE": "1"}
    # Static figures only: Jupyter clients can hang on cells that open widgets (nbclient#312).
    env["WAVEGMS_NO_WIDGETS"] = "1"
    command = [sys.executable, "-m", "pytest", "--nbval-lax", "--nbval-cell-timeout=900"]
    command += ["-p", "no:cacheprovider", "-q", str(NOTEBOOK_DIR)]
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    code_cells = sum(cell.cell_type == "code" for n in NOTEBOOKS for cell in _read(n).cells)
    assert f"{code_cells} passed" in result.stdout  # nbval runs each code cell as a test
    assert _listing(NOTEBOOK_DIR) == before, "nbval wrote into notebooks/"
    assert list(tmp_path.glob("run_synthetic_64px_*/best")), "outputs go to WAVEGMS_COURSE_DIR"
