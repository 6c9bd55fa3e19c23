"""The course: every notebook runs top to bottom in both editions (papermill), carries no outputs,
has its badge, install and parameters cells, and is in step with its source and student edition."""

from __future__ import annotations

import ast
import json
import os
import re
from pathlib import Path

import matplotlib
import nbformat
import pytest
from runs import export_synthetic

from tools import authoring
from wavegms import course
from wavegms.course import runner as course_runner
from wavegms.course.notebooks import NOTEBOOKS, PROFILES
from wavegms.course.runner import CourseError, run_course
from wavegms.engine.config import PRESETS

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
    assert not problems, "\n".join(problems) + "\nrun `python -m tools.authoring sync`"


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
    assert 'WAVEGMS_URL = "git+https://github.com/wavegms/wavegms"' in install.source
    (pip,) = [line for line in install.source.splitlines() if '"pip", "install"' in line]
    assert pip.strip().endswith('f"wavegms @ {WAVEGMS_URL}"]')
    # Nothing that replaces Colab's kernel packages: no extras, no torch, no upgrades.
    for banned in ("[notebooks]", "torch", "ipykernel", "ipython", "-U", "--upgrade"):
        assert banned not in pip, pip
    assert 'importlib.util.find_spec("wavegms") is None' in install.source  # installed: no pip
    assert "Restart session" in install.source
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
def test_notebook_states_objectives_times_and_exercises_with_checks(name):
    notebook = _read(name)
    text = "\n".join(cell.source for cell in notebook.cells if cell.cell_type == "markdown")
    assert "**Learning objectives.**" in text
    assert "CPU quick mode" in text and "Colab T4" in text and "estimate" in text
    assert "### Exercise 1" in text
    tags = [cell.metadata.get("tags", []) for cell in notebook.cells]
    solutions = [
        i for i, t in enumerate(tags) if "solution" in t and notebook.cells[i].cell_type == "code"
    ]
    assert solutions, "every notebook has exercises with worked solutions"
    for index in solutions:  # each answer is checked by the next cell, in both editions
        source = notebook.cells[index + 1].source
        assert "check" in tags[index + 1] and re.search(r"\bcheck\w*\(", source), source


def test_the_notebooks_disclose_the_samples_and_send_to_the_model_cards_test_score():
    """03-05 show the pretrained model on the BUSI samples, which selected its checkpoint: they
    say so and point to its model card for the test score, quoting no score of their own that
    the card does not give (a retrained model must not inherit its predecessor's)."""
    card = (REPO / "wavegms" / "pretrained" / "busi" / "README.md").read_text()
    (score,) = re.findall(r"^\| GMS test, 130[^|]*\| ([^|]+?) \|", card, re.M)
    for name in (
        "03_lmm_training.ipynb",
        "04_evaluation.ipynb",
        "05_inference_on_your_images.ipynb",
    ):
        markdown = [c.source for c in _read(name).cells if c.cell_type == "markdown"]
        text = " ".join(" ".join(markdown).split())
        assert "**validation** images" in text, name
        assert "(`wavegms/pretrained/busi/README.md`) gives its score on the 130 BUSI test" in text
        quoted = re.findall(r"130 BUSI test images[^.]*?Dice ([\d.]+)", text)
        assert all(q.rstrip(".") == score for q in quoted), (name, quoted, score)


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

    export_synthetic(SyntheticDataset(3, image_size=32), tmp_path / "busi")
    session = course.start("busi", tmp_path, device="cpu", out_dir=tmp_path / "out")
    assert session.dataset == "busi"
    batch = course.sample_batch(session, 2, 32)
    assert batch["image"].shape == (2, 3, 32, 32) and batch["mask"].shape == (2, 1, 32, 32)


def test_ensure_trained_resumes_through_train_and_refuses_other_settings(tmp_path):
    from wavegms.engine.checkpoint import TRAIN_CONFIG, TRAINING_STATE
    from wavegms.engine.config import preset

    preset("quick", image_size=32).save(tmp_path / TRAIN_CONFIG)
    (tmp_path / "last").mkdir()
    (tmp_path / "last" / TRAINING_STATE).touch()  # a run that finished an epoch
    with pytest.raises(ValueError) as refused:
        course.ensure_trained(preset("quick", image_size=64, batch_size=4), tmp_path)
    # In a notebook's words: its parameters, never a command-line flag or the engine's list
    # of settings a resumed run may change.
    message = str(refused.value)
    assert "trained with image_size 32, batch_size 2" in message, message
    assert "ask for image_size 64 (IMAGE_SIZE), batch_size 4 (BATCH_SIZE)" in message, message
    assert "--" not in message and "num_workers" not in message, message


def test_ensure_trained_reuses_a_finished_run_in_the_words_of_a_notebook(
    tmp_path, monkeypatch, capsys
):
    from wavegms.course import session as course_session
    from wavegms.engine.checkpoint import LOG, TRAIN_CONFIG, TRAINING_STATE
    from wavegms.engine.config import preset

    config = preset("quick", image_size=32, epochs=2)
    config.save(tmp_path / TRAIN_CONFIG)
    (tmp_path / "last").mkdir()
    (tmp_path / "last" / TRAINING_STATE).touch()
    (tmp_path / LOG).write_text('{"epoch": 1}\n{"epoch": 2}\n')

    def never(*_args, **_kwargs):
        raise AssertionError("a finished run is not trained again")

    monkeypatch.setattr(course_session, "train", never)
    assert course.ensure_trained(config, tmp_path) == tmp_path
    printed = capsys.readouterr().out
    assert "Reusing the finished run" in printed and "--" not in printed, printed
    with pytest.raises(ValueError, match="trained with image_size 32"):  # still refused
        course.ensure_trained(preset("quick", image_size=64, epochs=2), tmp_path)


def test_ensure_trained_in_a_headless_run_prints_epoch_lines_not_bars(tmp_path, monkeypatch):
    # `wavegms course` sets WAVEGMS_NO_WIDGETS: a bar saved in the executed notebook would
    # show its first state ("0%") for good, so training prints one line per epoch instead.
    from wavegms.course import session as course_session
    from wavegms.course import widgets
    from wavegms.engine.config import preset

    asked = []
    monkeypatch.setattr(course_session, "train", lambda *a, progress, **k: asked.append(progress))
    monkeypatch.setenv(widgets.NO_WIDGETS_ENV, "1")
    course.ensure_trained(preset("quick", image_size=32), tmp_path / "run")
    assert asked == [False]


def test_browse_draws_one_static_figure_without_widgets(monkeypatch):
    import matplotlib.pyplot as plt
    from IPython.display import Image

    from wavegms.course import widgets

    monkeypatch.setenv(widgets.NO_WIDGETS_ENV, "1")
    shown = []
    monkeypatch.setattr("IPython.display.display", lambda item, **_: shown.append(item))
    calls = []

    def draw(level=0, band="LL"):
        calls.append((level, band))
        fig, ax = plt.subplots(figsize=(3, 2))
        ax.set_title(f"{level} {band}")
        return fig

    widgets.browse(draw, {"level": [1, 2], "band": ["LL", "H"]}, static={"band": "H"})
    assert calls == [(1, "H")]
    (image,) = shown
    assert isinstance(image, Image) and image.data[:4] == b"\x89PNG"
    assert not plt.get_fignums(), "the pyplot figure is closed: Jupyter does not show it again"


def test_browse_redraws_one_figure_in_place_with_aligned_labelled_controls(monkeypatch):
    import ipywidgets
    import matplotlib.pyplot as plt
    from IPython.display import Image

    from wavegms.course import widgets

    monkeypatch.setattr(widgets, "widgets_available", lambda: True)  # as inside a live kernel
    shown, updated = [], []
    monkeypatch.setattr("IPython.display.display", lambda item, **kw: shown.append((item, kw)))
    monkeypatch.setattr(
        "IPython.display.update_display", lambda item, **kw: updated.append((item, kw))
    )
    calls = []

    def draw(case=0, band="LL"):
        calls.append((case, band))
        fig, ax = plt.subplots(figsize=(3, 2))
        ax.set_title(f"{band} #{case + 1} " + "long title" * case)  # the size must not change
        return fig

    cases = [(f"#{k + 1}", k) for k in range(3)]  # 1-based labels, 0-based values
    widgets.browse(draw, {"case": cases, "band": ["LL", "H"]}, static={"band": "H"})
    (panel, _), (figure, where) = shown
    assert isinstance(panel, ipywidgets.VBox) and isinstance(figure, Image)
    case, band = panel.children
    assert isinstance(case, ipywidgets.SelectionSlider) and isinstance(band, ipywidgets.Dropdown)
    assert [label for label, _ in case.options] == ["#1", "#2", "#3"]
    assert case.options[case.index][0] == "#1"
    assert case.value == 0 and band.value == "H"
    assert {c.style.description_width for c in panel.children} == {widgets.LABEL_WIDTH}
    # Shown first, then the first control's next value drawn ahead for a quick first move.
    assert calls == [(0, "H"), (1, "H")]
    case.value = 1
    assert calls == [(0, "H"), (1, "H")], "drawn ahead: the first move redraws nothing"
    band.value = "LL"
    assert calls[2:] == [(1, "LL")]
    assert [kw["display_id"] for _, kw in updated] == [where["display_id"]] * 2  # one figure
    sizes = {_png_size(item.data) for item, _ in [(figure, None), *updated]}
    assert len(sizes) == 1, f"the figure's size jumps: {sizes}"
    assert not plt.get_fignums()


def _png_size(data: bytes) -> tuple[int, int]:
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def test_the_course_switches_widgets_off_only_while_it_runs(monkeypatch):
    from wavegms.course import widgets

    monkeypatch.delenv(widgets.NO_WIDGETS_ENV, raising=False)
    with course_runner._widgets_off():
        assert os.environ[widgets.NO_WIDGETS_ENV] == "1"  # what the kernels it starts inherit
        assert not widgets.widgets_available()
    assert widgets.NO_WIDGETS_ENV not in os.environ


def test_jupyter_in_this_environment_saves_the_widgets_state():
    """Reopened after a save, a notebook shows its sliders (still), not "Error displaying
    widget: model not found": the package installs a JupyterLab default (also read by
    Notebook 7) that turns on the widget manager's saveState, a setting that must exist."""
    from jupyterlab.commands import get_app_dir

    app_dir = Path(get_app_dir())
    installed = app_dir / "settings" / "overrides.d" / "wavegms.json"
    assert installed.is_file(), f"{installed} is missing: pip install -e '.[notebooks]' again"
    assert json.loads(installed.read_text()) == json.loads(
        (NOTEBOOK_DIR / "jupyter-settings" / "wavegms.json").read_text()
    )
    ((plugin, values),) = json.loads(installed.read_text()).items()
    package, name = plugin.split(":")
    schema_file = app_dir.parent / "labextensions" / package / "schemas" / package / f"{name}.json"
    schema = json.loads(schema_file.read_text())
    for key, value in values.items():
        assert schema["properties"][key]["type"] == "boolean" and value is True


# ---- executing the course ----------------------------------------------------------------------


def _outputs(path: Path) -> list[dict]:
    notebook = nbformat.read(path, as_version=4)
    return [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]


def _printed(path: Path) -> str:
    return "".join(o.get("text", "") for o in _outputs(path) if o.output_type == "stream")


@pytest.fixture(scope="module", params=["instructor", "student"])
def executed_course(request, tmp_path_factory):
    """The whole course run once in quick mode, as `wavegms course [--edition student]` runs
    it; the student edition as its notebooks come, exercises not done."""
    before = _listing(NOTEBOOK_DIR)
    out = tmp_path_factory.mktemp(request.param)
    paths = run_course("quick", out, edition=request.param)
    assert _listing(NOTEBOOK_DIR) == before, "running the course wrote into notebooks/"
    return request.param, out, paths


@pytest.mark.notebooks
def test_every_notebook_runs_in_quick_mode_with_static_figures(executed_course):
    _, out, paths = executed_course
    assert [path.name for path in paths] == list(NOTEBOOKS)
    for path in paths:
        assert path.with_suffix(".html").stat().st_size > 10_000
        assert path.stat().st_mode & 0o777 == 0o644 & ~_umask(), "executed notebooks are 0644"
        outputs = _outputs(path)
        assert not [o for o in outputs if o.output_type == "error"], path.name
        # Widgets render nothing headless: every notebook still shows its figures as PNGs.
        assert any("image/png" in o.get("data", {}) for o in outputs), f"{path.name}: no figure"


@pytest.mark.notebooks
def test_exercise_checks_pass_with_solutions_and_wait_without(executed_course):
    edition, _, paths = executed_course
    for path in paths:
        printed = _printed(path)
        verdicts = re.findall(r"^Exercise \d+: (correct|not quite|not done yet)", printed, re.M)
        solutions = [
            c
            for c in _read(path.name).cells
            if "solution" in c.metadata.get("tags", []) and c.cell_type == "code"
        ]
        assert len(verdicts) == len(solutions), f"{path.name}: {verdicts}"
        expected = "correct" if edition == "instructor" else "not done yet"
        assert set(verdicts) <= {expected}, f"{path.name} ({edition}): {verdicts}"


@pytest.mark.notebooks
def test_the_course_trains_evaluates_and_predicts_for_real(executed_course):
    _, out, _ = executed_course
    (run_dir,) = (out / "work").glob("run_synthetic_64px_*")
    assert (run_dir / "best" / "config.json").is_file() and (run_dir / "snapshots.pt").is_file()
    (summary_file,) = (out / "work" / "evaluation").glob("*/summary.json")
    summary = json.loads(summary_file.read_text())
    assert summary["n_images"] == PRESETS["quick"]["synthetic_sizes"][2]
    # Found by their look, not by where lesions usually are (issue 13): a constant mask fails.
    assert summary["prior_dice_mean"] < 0.35, summary
    assert summary["dice_mean"] > summary["prior_dice_mean"] + 0.25, summary
    masks = sorted(p.name for p in (out / "work" / "my_predictions").glob("example_?.png"))
    assert masks == ["example_0.png", "example_1.png", "example_2.png"]


@pytest.mark.notebooks
def test_what_the_notebooks_say_matches_what_they_show(executed_course):
    edition, out, _ = executed_course
    printed = {path.stem: _printed(path) for path in sorted(out.glob("0*.ipynb"))}
    # 00: widgets switched off in a headless run are not a defect to fix.
    assert "FIX" not in printed["00_setup"], printed["00_setup"][-800:]
    # 00-02: their claims cells, which assert what the text says about the outputs, ran (a
    # failing one stops the run).
    for stem in ("00_setup", "01_wavelets", "02_tiny_vae_latents"):
        notebook = nbformat.read(out / f"{stem}.ipynb", as_version=4)
        claims = [c for c in notebook.cells if "claims" in c.metadata.get("tags", [])]
        assert claims and all(c.execution_count for c in claims), stem
    # 04: HD95 is defined as MONAI computes it (the larger directed 95th percentile).
    assert "HD95 by hand equals wavegms.engine.metrics.hd95: True" in printed["04_evaluation"]
    # 03-05: the claims cells ran (an assertion that failed would be an error output), a check
    # cell shows its verdict once (printed, not echoed), and 05 scores its examples.
    for stem in ("03_lmm_training", "04_evaluation", "05_inference_on_your_images"):
        executed = nbformat.read(out / f"{stem}.ipynb", as_version=4)
        if stem != "05_inference_on_your_images":  # 05 prints what it shows; it asserts nothing
            assert _tagged(executed, "claims"), f"{stem}: no claims cell"
        for cell in _tagged(executed, "check"):
            assert not [o for o in cell.outputs if o.output_type == "execute_result"], cell.source
    scored = re.findall(
        r"^(example_\d): Dice ([\d.]+) against its true mask",
        printed["05_inference_on_your_images"],
        re.M,
    )
    assert [name for name, _ in scored] == ["example_0", "example_1", "example_2"], scored
    # 03: the curves are drawn once, and no cell prints a module listing.
    notebook = nbformat.read(out / "03_lmm_training.ipynb", as_version=4)
    tagged = [c for c in notebook.cells if {"train", "curves"} & set(c.metadata.get("tags", []))]
    figures = [o for c in tagged for o in c.outputs if "image/png" in o.get("data", {})]
    assert len(tagged) == 2 and len(figures) == 1, f"{len(figures)} curve figures"
    for path in out.glob("0*.ipynb"):
        for cell in nbformat.read(path, as_version=4).cells:
            for output in cell.get("outputs", []):
                text = output.get("text", "") + output.get("data", {}).get("text/plain", "")
                assert text.count("\n") < 60, f"{path.name}: a {text.count(chr(10))}-line output"


def _umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


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
    # The notebook saved for inspection is an ordinary file, and no temporary one is left.
    assert caught.value.executed.stat().st_mode & 0o777 == 0o666 & ~_umask()
    assert not list((tmp_path / "out").glob(".*"))


# ---- the course book, built from the executed course -------------------------------------------


@pytest.mark.notebooks
@pytest.mark.parametrize("executed_course", ["instructor"], indirect=True)  # the same run
def test_the_course_book_is_built_from_the_executed_course(executed_course, tmp_path):
    from html_pages import broken_links, is_local, read_page

    from wavegms.course.book import build_book

    _, out, _ = executed_course
    before = {path.name: path.read_bytes() for path in out.glob("*.ipynb")}
    index = build_book(out, tmp_path / "book", strict=True)
    assert {path.name: path.read_bytes() for path in out.glob("*.ipynb")} == before
    site = index.parent
    stems = [Path(name).stem for name in NOTEBOOKS]
    for page in ["index", *stems, "paper_map", "times", "search"]:
        assert (site / f"{page}.html").is_file(), f"no page {page}"
    assert broken_links(site) == []
    assert b"Haar" in (site / "searchindex.js").read_bytes(), "the notebooks are searchable"

    landing = read_page(index)
    for name, stem in zip(NOTEBOOKS, stems):
        page = read_page(site / f"{stem}.html")
        # Landing page -> Colab: one click; landing page -> notebook page -> Colab: two.
        assert {f"{stem}.html", BADGE.format(name)} <= {href for href, _ in landing.links}
        colab = {href for href, _ in page.links if href.startswith("https://colab.research")}
        assert colab == {BADGE.format(name)}, f"{stem}: Colab links {colab}"
        assert "Open in Colab" in {text for href, text in page.links if href in colab}
        (download,) = [href for href, text in page.links if text.startswith("Download this")]
        assert (site / download).read_bytes() == before[name], "the executed notebook itself"
        # Every figure the course drew is an image on the page (the browsers' too).
        executed = nbformat.read(out / name, as_version=4)
        drawn = [
            o
            for c in executed.cells
            for o in c.get("outputs", [])
            if "image/png" in o.get("data", {})
        ]
        shown = [src for src, around in page.images if any("cell_output" in c for c in around)]
        assert len(shown) == len(drawn) > 0 and all(src for src in shown), stem
        assert all(src.startswith("data:image/png") or is_local(src) for src in shown)
        assert "Error displaying" not in page.output_text and "not found" not in page.output_text
        assert "widget-view+json" not in (site / f"{stem}.html").read_text()
    # The epoch x channel browser of 03 switches between the frames the course drew.
    html_03 = (site / "03_lmm_training.html").read_text()
    assert html_03.count('class="wavegms-frames"') == 1 and html_03.count("data-control=") == 2
    times = read_page(site / "times.html").text
    assert all(re.search(rf"{stem}\s+[\d.]+ (s|min)\s+quick", times) for stem in stems), times
