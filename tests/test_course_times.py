"""The seconds of each section of a course notebook (issue 19, item 7): read from what
papermill records per code cell, grouped under the ``## `` headings, and kept by
``wavegms course`` in ``course_times.json``. Nothing is executed: the notebooks are made by
hand, with papermill's metadata."""

from __future__ import annotations

import nbformat

from wavegms.course import runner
from wavegms.course.timings import OPENING, read_times, section_seconds, sections


def _code(source: str, seconds: float | None):  # noqa: ANN202 - a notebook cell
    """A code cell as papermill leaves it: its duration in ``metadata.papermill``."""
    cell = nbformat.v4.new_code_cell(source)
    cell.metadata["papermill"] = {"duration": seconds, "status": "completed"}
    return cell


def _markdown(source: str):  # noqa: ANN202
    cell = nbformat.v4.new_markdown_cell(source)
    cell.metadata["papermill"] = {"duration": None, "status": "pending"}
    return cell


def _executed() -> nbformat.NotebookNode:
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [
        _markdown("# 00 · A notebook\n\nIts introduction."),
        _code("import os", 0.3),  # before the first `## `: the opening section
        _markdown("## Setup\n\nThe first cells."),
        _code("SEED = 0", 0.5),
        _code("SEED = 1  # papermill's injected parameters", 1.0),
        # A heading in the middle of a cell: the text above it is the previous section's.
        _markdown("More about the setup.\n\n## 1. First steps\n\n### Exercise 1\n\nDo it."),
        _code("x = 1", 2.0),
        _markdown("```python\n## not a heading: inside a fenced block\n```"),
        _code("y = 2", 3.5),
        _code("never_run()", None),  # no duration recorded: counts nothing
        _markdown("## 2. Last\nText."),
    ]
    return notebook


def test_seconds_are_summed_per_section_from_papermills_durations():
    assert section_seconds(_executed()) == [
        {"title": OPENING, "seconds": 0.3},
        {"title": "Setup", "seconds": 1.5},
        {"title": "1. First steps", "seconds": 5.5},
        {"title": "2. Last", "seconds": 0.0},
    ]
    found = sections(_executed().cells)
    assert found[1].text == ["## Setup", "", "The first cells.", "More about the setup.", ""]
    assert found[2].heading == (5, 2) and "### Exercise 1" in found[2].text
    assert found[2].text[-2:] == ["## not a heading: inside a fenced block", "```"]


def test_a_notebook_that_opens_with_a_section_has_no_opening_section():
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [_markdown("## Only ##"), _code("x = 1", 1.0)]
    assert section_seconds(notebook) == [{"title": "Only", "seconds": 1.0}]


def test_the_course_records_each_notebooks_sections(tmp_path, monkeypatch):
    source = tmp_path / "notebooks"
    source.mkdir()
    notebook = _executed()
    notebook.cells.insert(
        0, nbformat.v4.new_code_cell("SEED = 0", metadata={"tags": ["parameters"]})
    )
    notebook.metadata["kernelspec"] = {"name": "python3", "language": "python"}
    nbformat.write(notebook, source / "00_setup.ipynb")

    def execute(path, output, parameters, kernel, timeout, label):  # what papermill leaves
        nbformat.write(_executed(), output)

    monkeypatch.setattr(runner, "execute", execute)
    monkeypatch.setattr(runner, "export_html", lambda notebook, html: html.write_text(""))
    out = tmp_path / "course"
    runner.run_course("quick", out, notebooks=["00"], source_dir=source)

    entry = read_times(out)["00_setup.ipynb"]
    assert entry["profile"] == "quick" and entry["edition"] == "instructor"
    assert entry["sections"] == section_seconds(_executed())
