"""Editing the course: an edit made in Jupyter (the .ipynb) or in an editor (the .py) survives
the documented sync command and reaches the student edition; conflicts and drift are refused."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from tools import authoring
from wavegms.course.notebooks import NOTEBOOKS

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = REPO / "notebooks"


def _readme_sync_command() -> list[str]:
    """The first code block after `<!-- notebook-sync -->` in the README, as an argv."""
    readme = (REPO / "README.md").read_text()
    match = re.search(r"<!-- notebook-sync -->\s*```\w*\n(.+?)\n```", readme, re.S)
    assert match, "README.md has no code block after <!-- notebook-sync -->"
    (line,) = [x for x in match[1].splitlines() if x.strip() and not x.startswith("#")]
    argv = shlex.split(line.split("  #")[0])
    assert argv[:3] == ["python", "-m", "tools.authoring"], line
    return [sys.executable, *argv[1:]]


def _sync(folder: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    command = [*_readme_sync_command(), "--notebooks", str(folder)]
    return subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True)


def _copy_course(tmp_path: Path) -> Path:
    """A copy of the course's notebooks, without the measured times: an edit here may change a
    section's words, which the time lines count (tests/test_authoring_times.py)."""
    folder = tmp_path / "notebooks"
    ignore = shutil.ignore_patterns(".ipynb_checkpoints", "section_times.json")
    shutil.copytree(NOTEBOOK_DIR, folder, ignore=ignore)
    return folder


def _first_code_cell_after(notebook, tag: str) -> int:
    tagged = [i for i, c in enumerate(notebook.cells) if tag in c.metadata.get("tags", [])]
    return next(
        i
        for i in range(tagged[0] + 1, len(notebook.cells))
        if notebook.cells[i].cell_type == "code"
    )


def test_an_edit_saved_in_jupyter_survives_the_sync_command(tmp_path):
    folder = _copy_course(tmp_path)
    path = folder / "03_lmm_training.ipynb"
    notebook = nbformat.read(path, as_version=4)
    index = _first_code_cell_after(notebook, "start")
    notebook.cells[index].source += '\nprint("an instructor\'s edit")'
    # Jupyter saves what ran: outputs and counts must not reach the committed files.
    notebook.cells[index].outputs = [nbformat.v4.new_output("stream", text="hello\n")]
    notebook.cells[index].execution_count = 7
    notebook.cells.insert(1, nbformat.v4.new_markdown_cell("A note added in JupyterLab."))
    nbformat.write(notebook, path)
    # The .py newer than the edit: what the last sync recorded, not the clock, says which
    # file was edited.
    os.utime(folder / "03_lmm_training.py")

    result = _sync(folder)
    assert result.returncode == 0, result.stdout + result.stderr

    source = (folder / "03_lmm_training.py").read_text()
    assert 'print("an instructor\'s edit")' in source and "A note added in JupyterLab." in source
    for edition in (path, folder / "student" / "03_lmm_training.ipynb"):
        synced = nbformat.read(edition, as_version=4)
        assert "A note added in JupyterLab." in synced.cells[1].source
        assert any("an instructor's edit" in c.source for c in synced.cells)
        assert all(not c.get("outputs") and c.get("execution_count") is None for c in synced.cells)
    assert authoring.sync(folder, check=True) == []


def test_edits_of_the_py_source_reach_both_editions_one_sync_after_another(tmp_path):
    folder = _copy_course(tmp_path)
    source = folder / "01_wavelets.py"
    for n in (1, 2):  # a second edit after a sync: the record moved on with the first
        source.write_text(source.read_text() + f'\n# %%\nprint("edit {n} in an editor")\n')
        os.utime(folder / "01_wavelets.ipynb")  # newer, but not edited

        result = _sync(folder)
        assert result.returncode == 0, result.stdout + result.stderr
        for edition in (folder / "01_wavelets.ipynb", folder / "student" / "01_wavelets.ipynb"):
            cells = nbformat.read(edition, as_version=4).cells
            assert cells[-1].source == f'print("edit {n} in an editor")'


def test_both_files_edited_differently_are_refused_and_kept(tmp_path):
    folder = _copy_course(tmp_path)
    ipynb, py = folder / "02_tiny_vae_latents.ipynb", folder / "02_tiny_vae_latents.py"
    notebook = nbformat.read(ipynb, as_version=4)
    notebook.cells[-1].source += "\nEdited in Jupyter."
    nbformat.write(notebook, ipynb)
    py.write_text(py.read_text() + '\n# %%\nprint("edited in an editor")\n')
    before = ipynb.read_text(), py.read_text()

    result = _sync(folder)
    assert result.returncode == 1
    assert "both" in result.stderr and "02_tiny_vae_latents.py were edited" in result.stderr
    assert (ipynb.read_text(), py.read_text()) == before, "nothing is overwritten"


def test_check_finds_drift_outputs_and_different_opening_cells(tmp_path):
    folder = _copy_course(tmp_path)
    assert authoring.sync(folder, check=True) == []
    notebook = nbformat.read(folder / "04_evaluation.ipynb", as_version=4)
    (install,) = [c for c in notebook.cells if "install" in c.metadata.get("tags", [])]
    install.source = install.source.replace("import sys", "import sys  # changed", 1)
    nbformat.write(notebook, folder / "04_evaluation.ipynb")
    (folder / "student" / "00_setup.ipynb").unlink()

    problems = "\n".join(authoring.sync(folder, check=True))
    assert "04_evaluation.py is out of step" in problems
    assert "student/00_setup.ipynb is out of step" in problems
    assert "04_evaluation: the 'install' cell differs from 00_setup's" in problems
    assert (folder / "04_evaluation.py").read_text() == (
        NOTEBOOK_DIR / "04_evaluation.py"
    ).read_text()


def test_check_finds_markdown_left_as_comments_in_a_code_cell(tmp_path):
    folder = _copy_course(tmp_path)
    source = folder / "01_wavelets.py"
    heading = "# ## 7. A section whose `# %% [markdown]` line was forgotten"
    edit = (
        f"\n# %%\nx = 1  # a comment is fine\n# #2 is not a heading either\n{heading}\n#\n# Text.\n"
    )
    source.write_text(source.read_text() + edit)
    (problem,) = authoring.sync(folder, quiet=True)
    # Nothing is written while a problem stands: the notebook still ends before the new cell.
    new = len(nbformat.read(folder / "01_wavelets.ipynb", as_version=4).cells)
    assert problem.startswith(f"01_wavelets cell {new}: the code cell holds the markdown heading")
    assert f"{heading!r} as a comment: put `# %% [markdown]` on the line above it" in problem
    source.write_text(source.read_text().replace(heading, f"# %% [markdown]\n{heading[2:]}"))
    assert authoring.sync(folder, quiet=True) == []


def test_student_edition_keeps_stubs_and_drops_worked_answers():
    source = "\n".join(
        [
            "answer = ...  # the ratio",
            authoring.SOLUTION_START,
            "answer = 2 / 1",
            authoring.SOLUTION_END,
            "def objective(x):",
            "    total = 0",
            f"    {authoring.SOLUTION_START}",
            "    total = x.sum()",
            f"    {authoring.SOLUTION_END}",
            "    return total",
        ]
    )
    stripped = authoring.strip_solution(source)
    assert "2 / 1" not in stripped and "x.sum()" not in stripped
    assert f"answer = ...  # the ratio\n{authoring.TODO}\ndef objective" in stripped
    assert f"    total = 0\n    ...  {authoring.TODO}\n    return total" in stripped
    compile(stripped, "stub", "exec")

    notebook = nbformat.v4.new_notebook()
    notebook.cells = [
        nbformat.v4.new_code_cell(source, metadata={"tags": ["solution"]}),
        nbformat.v4.new_markdown_cell("Why: ...", metadata={"tags": ["solution"]}),
        nbformat.v4.new_code_cell("check()", metadata={"tags": ["check"]}),
    ]
    edition = authoring.student(notebook, "99_test")
    assert [c.cell_type for c in edition.cells] == ["code", "code"]
    assert edition.cells[0].metadata["tags"] == ["exercise"]
    with pytest.raises(ValueError, match="BEGIN SOLUTION without"):
        authoring.strip_solution(f"{authoring.SOLUTION_START}\nx = 1")


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_student_notebooks_have_no_worked_solutions(name):
    instructor = nbformat.read(NOTEBOOK_DIR / name, as_version=4)
    student = nbformat.read(NOTEBOOK_DIR / "student" / name, as_version=4)
    solutions = [c for c in instructor.cells if "solution" in c.metadata.get("tags", [])]
    assert not [c for c in student.cells if "solution" in c.metadata.get("tags", [])]
    assert "jupytext" not in student.metadata and student.metadata["accelerator"] == "GPU"
    stubs = [c for c in student.cells if "exercise" in c.metadata.get("tags", [])]
    assert len(stubs) == sum(c.cell_type == "code" for c in solutions)
    assert all(authoring.TODO in c.source for c in stubs)


def _readme_sections() -> list[tuple[str, str]]:
    """The README's ``## `` sections: (heading, text), in order."""
    parts = re.split(r"^## (.+)$", (REPO / "README.md").read_text(), flags=re.M)
    return list(zip(parts[1::2], parts[2::2]))


def test_the_readme_clones_before_it_installs_from_the_checkout():
    # An instructor reading from the top must not meet `pip install -e .` before the clone:
    # a section above Install that installs from the checkout first points to Install.
    sections = _readme_sections()
    headings = [heading for heading, _ in sections]
    install = headings.index("Install")
    assert "git clone" in sections[install][1]
    for heading, text in sections[:install]:
        if "pip install -e" in text:
            before = text[: text.index("pip install -e")]
            assert "(#install)" in before, f"{heading}: installs before pointing to Install"


def test_the_troubleshooting_speaks_of_what_the_notebooks_extra_installs():
    import tomllib

    extra = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    names = {
        re.split(r"[<>=\[ ]", requirement)[0]
        for requirement in extra["optional-dependencies"]["notebooks"]
    }
    (text,) = [text for heading, text in _readme_sections() if heading == "Troubleshooting"]
    if "notebook" not in names:  # Jupyter Notebook 7 comes only with the `notebook` package
        assert not re.search(r"Notebook 7|notebook>=7", text, re.I), "Notebook 7 is not installed"
    if "jupyterlab" in names:
        assert "JupyterLab" in text
