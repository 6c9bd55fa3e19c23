"""The course book's parts that need no course run: frames of a browser kept for the book and
turned into HTML controls, the measured times, and the refusals. The book built from a real
quick course run is checked in test_notebooks.py, which executes the course once."""

from __future__ import annotations

import json
import os
import re

import matplotlib
import nbformat
import pytest

from wavegms.course import widgets
from wavegms.course.book.notebooks import (
    WIDGET_STATE,
    WIDGET_VIEW,
    as_page,
    check_executed,
    frames_html,
)
from wavegms.course.runner import _widgets_off
from wavegms.course.timings import TIMES_FILE, read_times, record_time

matplotlib.use("Agg")


def _browse_headless(monkeypatch, controls, static=None):
    """browse() as `wavegms course` runs it: what it displays and the values it drew."""
    import matplotlib.pyplot as plt

    shown, calls = [], []
    monkeypatch.setattr("IPython.display.display", lambda item, **kw: shown.append((item, kw)))

    def draw(**values):
        calls.append(values)
        fig, ax = plt.subplots(figsize=(2, 1))
        ax.set_title(repr(sorted(values.items())))
        return fig

    with _widgets_off():
        widgets.browse(draw, controls, static=static)
    return shown, calls


def test_a_course_run_keeps_every_frame_of_a_small_browser(monkeypatch):
    controls = {"epoch": [1, 3, 5], "band": ["LL", "H"]}
    shown, calls = _browse_headless(monkeypatch, controls, static={"epoch": 5})
    ((bundle, kw),) = shown
    assert kw == {"raw": True}
    frames = bundle[widgets.FRAMES_MIME]
    assert [(c["name"], c["labels"], c["shown"], c["slider"]) for c in frames["controls"]] == [
        ("epoch", ["1", "3", "5"], 2, True),
        ("band", ["LL", "H"], 0, False),
    ]
    # Drawn once each, the shown one first; stored in itertools.product order.
    assert calls[0] == {"epoch": 5, "band": "LL"} and len(calls) == 6
    assert frames["frames"][4] == bundle["image/png"]  # (5, "LL") is frame 2 * 2 + 0
    assert len(set(frames["frames"])) == 6


def test_a_large_browser_keeps_its_static_figure_only(monkeypatch):
    from IPython.display import Image

    shown, calls = _browse_headless(monkeypatch, {"case": list(range(widgets.FRAME_LIMIT + 1))})
    ((image, _),) = shown
    assert isinstance(image, Image) and len(calls) == 1


def test_frames_become_html_controls_that_show_the_default_figure_first():
    frames = {
        "controls": [
            {"name": "epoch", "labels": ["1", "5"], "shown": 1, "slider": True},
            {"name": "image", "labels": ["a<b", "c"], "shown": 0, "slider": False},
        ],
        "frames": ["AAA", "BBB", "CCC", "DDD"],
    }
    page = frames_html(frames)
    assert 'type="range"' in page and 'max="1"' in page and 'value="1"' in page
    assert '<option value="0" selected>a&lt;b</option>' in page
    assert re.search(r'<img class="wavegms-frames-image"[^>]*src="data:image/png;base64,CCC"', page)
    data = re.search(r'<script type="application/json"[^>]*>(.*)</script>', page)[1]
    assert json.loads(data) == {"labels": [["1", "5"], ["a<b", "c"]], "frames": frames["frames"]}


def _executed(input_path="notebooks/00_setup.ipynb", exception=False):
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["papermill"] = {"input_path": input_path, "exception": exception}
    notebook.cells = [
        nbformat.v4.new_markdown_cell(
            "# 00 · Title\n\n[![Open In Colab](badge.svg)](url)\n\nIntro."
        ),
        nbformat.v4.new_code_cell("x"),
    ]
    return notebook


def test_only_a_finished_instructor_run_is_published(tmp_path):
    check_executed(tmp_path / "00_setup.ipynb", _executed())
    with pytest.raises(ValueError, match="was not executed: run `wavegms course`"):
        check_executed(tmp_path / "a.ipynb", nbformat.v4.new_notebook())
    with pytest.raises(ValueError, match="failed in the course run"):
        check_executed(tmp_path / "a.ipynb", _executed(exception=True))
    with pytest.raises(ValueError, match="student edition"):
        check_executed(tmp_path / "a.ipynb", _executed("notebooks/student/00_setup.ipynb"))


def test_a_page_has_its_links_under_the_title_and_its_widgets_as_static_html():
    notebook = _executed()

    def model(name, **state):
        return {"model_name": name, "model_module": "@jupyter-widgets/controls", "state": state}

    # tqdm's bar as nbclient saves it: an HBox of a prefix, a progress bar and a suffix.
    saved = {
        "bar": model("HBoxModel", children=["IPY_MODEL_a", "IPY_MODEL_b", "IPY_MODEL_c"]),
        "a": model("HTMLModel", value="training: 100%"),
        "b": model("FloatProgressModel", min=0.0, max=5.0, value=5.0),
        "c": model("HTMLModel", value="5/5 [00:09&lt;00:00]"),
        "slider": model("IntSliderModel", value=3),
    }
    notebook.metadata["widgets"] = {WIDGET_STATE: {"state": saved, "version_major": 2}}

    def view(model_id, **fallback):
        data = {WIDGET_VIEW: {"model_id": model_id, "version_major": 2, "version_minor": 0}}
        return nbformat.v4.new_output("display_data", {**data, **fallback})

    notebook.cells[1].outputs = [
        view("bar", **{"text/plain": "training:  60%"}),  # the bar's text when it was shown
        view("gone"),
        view("slider", **{"text/plain": "IntSlider(value=3)"}),
    ]
    page = as_page(notebook, "[Open in Colab](url)")
    assert page.cells[0].source == "# 00 · Title\n\n[Open in Colab](url)\n\n\nIntro."
    bar, slider = (o["data"] for o in page.cells[1].outputs)
    assert list(bar) == ["text/html"] and "<span>training: 100%</span>" in bar["text/html"]
    assert '<progress max="5" value="5"></progress>' in bar["text/html"]
    assert slider == {"text/plain": "IntSlider(value=3)"}
    assert "widgets" not in page.metadata, "no state: myst-nb loads no widget manager"
    assert len(notebook.cells[1].outputs) == 3, "the executed notebook itself is left as it was"


def test_course_times_are_recorded_per_notebook_and_merged(tmp_path):
    assert read_times(tmp_path) == {}
    record_time(tmp_path, "00_setup.ipynb", 12.34, profile="quick", edition="instructor")
    record_time(tmp_path, "03_lmm_training.ipynb", 50.0, profile="quick", edition="instructor")
    record_time(tmp_path, "00_setup.ipynb", 10.01, profile="quick", edition="instructor")
    times = read_times(tmp_path)
    assert list(times) == ["00_setup.ipynb", "03_lmm_training.ipynb"]
    assert times["00_setup.ipynb"]["seconds"] == 10.0
    assert times["03_lmm_training.ipynb"]["machine"]["cores"] == os.cpu_count()
    (tmp_path / TIMES_FILE).write_text("[]")
    with pytest.raises(ValueError, match=TIMES_FILE):
        read_times(tmp_path)
    record_time(tmp_path, "01_wavelets.ipynb", 9.0, profile="quick", edition="instructor")
    assert list(read_times(tmp_path)) == ["01_wavelets.ipynb"], "a damaged file is replaced"


def test_the_book_command_says_to_run_the_course_first(tmp_path, capsys):
    from wavegms.cli import main

    status = main(["book", "--course", str(tmp_path / "course"), "--out", str(tmp_path / "b")])
    message = capsys.readouterr().err
    assert status == 2
    assert f"{tmp_path / 'course'} has no executed 00_setup.ipynb" in message
    assert "run `wavegms course --out" in message
    assert not (tmp_path / "b" / "html").exists()
