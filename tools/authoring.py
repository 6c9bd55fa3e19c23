"""Editing the course: keep the notebooks, their Python sources and the student edition in step.

Each course notebook exists three times in ``notebooks/``:

- ``NN_name.ipynb``: the instructor edition, with solutions, what Jupyter opens and edits;
- ``NN_name.py``: the same cells as a jupytext ``py:percent`` file, what ruff lints and a diff
  shows (the two are a jupytext pair: JupyterLab with jupytext saves both at once);
- ``student/NN_name.ipynb``: generated, never edited: each ``solution`` cell loses the code
  between ``# BEGIN SOLUTION`` and ``# END SOLUTION`` (a ``# TODO`` stays, so the
  notebook still runs top to bottom), and markdown cells tagged ``solution`` are left out
  (answers meant for students sit folded in ``<details>`` blocks of untagged cells instead).

``python -m tools.authoring sync`` brings the three in line after an edit of either the
``.ipynb`` (in Jupyter) or the ``.py`` (in an editor): the edited one wins, outputs are dropped,
and the student edition is written again; while any problem stands (a damaged file, a cell
marker that does not read back, papermill's injected cell), it writes nothing. The edited
side is the one whose cells differ from what the last sync wrote (a digest in the notebook's
metadata); without one, the newer file.
When both were edited differently, nothing is overwritten and the command says so.
``python -m tools.authoring check`` (CI) changes nothing and fails when the files are out of
step, the common opening cells (Colab badge, install, parameters, start) differ between
notebooks, a code cell holds a markdown heading as a comment, or, once
``notebooks/section_times.json`` exists, a section's time line is missing or out of date.

``python -m tools.authoring times COURSE_DIR`` keeps the per-section seconds of a course run
(``wavegms course --out COURSE_DIR``) in ``notebooks/section_times.json`` and writes the time
line under each ``## `` heading and the notebook's total under its title
(:mod:`tools.section_times`), then syncs; without COURSE_DIR it writes the lines again from
the stored seconds, after a section's text changed.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path

from tools import section_times
from wavegms.course.exercises import TODO
from wavegms.course.notebooks import NOTEBOOKS, read_notebook

STUDENT_DIR = "student"
COLAB = "https://colab.research.google.com/github/wavegms/wavegms/blob/main/notebooks/"
BADGE_IMAGE = "https://colab.research.google.com/assets/colab-badge.svg"
# The cells every notebook opens with, by tag: identical everywhere ("parameters": its first
# lines, up to OUT_DIR; a notebook may declare more parameters below them).
COMMON_CELLS = ("install", "parameters", "start")
SOLUTION_START, SOLUTION_END = "# BEGIN SOLUTION", "# END SOLUTION"
# A markdown heading commented out in a code cell: in the .py, a `# %% [markdown]` line was
# missing, so the heading and its text became comments of the code cell above.
COMMENTED_HEADING = re.compile(r"^#\s?#{2,6}\s+\S")  # section headings: ## to ######
# What jupytext writes into the .py (cells and their tags only) and the .ipynb's metadata.
_JUPYTEXT = {"notebook_metadata_filter": "-all", "cell_metadata_filter": "tags,-all"}
_KERNEL = {
    "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
    "language_info": {"name": "python"},
}
INSTRUCTOR_METADATA = {
    **_KERNEL,
    "jupytext": {"formats": "ipynb,py:percent", **_JUPYTEXT},
}
# Colab opens the student edition on a GPU runtime when one is free.
STUDENT_METADATA = {**_KERNEL, "accelerator": "GPU", "colab": {"provenance": [], "gpuType": "T4"}}


class SyncConflict(RuntimeError):
    """Both files of a pair were edited, differently: keeping either would lose the other."""


def badge(stem: str) -> str:
    """The markdown of the "Open in Colab" badge of notebook ``stem``: it opens the student
    edition."""
    return f"[![Open In Colab]({BADGE_IMAGE})]({COLAB}{STUDENT_DIR}/{stem}.ipynb)"


# ---- converting ----------------------------------------------------------------------------


def to_py(notebook) -> str:  # noqa: ANN001 - a NotebookNode
    """The ``py:percent`` text of ``notebook``'s cells (with their tags)."""
    import jupytext

    notebook = _copy(notebook)
    notebook.metadata = {"jupytext": dict(_JUPYTEXT)}
    return jupytext.writes(notebook, fmt="py:percent")


def from_py(text: str):  # noqa: ANN201 - a NotebookNode
    """The notebook of a ``py:percent`` text."""
    import jupytext

    return jupytext.reads(text, fmt="py:percent")


def _copy(notebook):  # noqa: ANN001, ANN202
    import copy

    return copy.deepcopy(notebook)


def _finish(cells: list, stem: str, metadata: dict):  # noqa: ANN202
    """A notebook of ``cells`` without outputs, with ids stable from one sync to the next."""
    import nbformat

    notebook = nbformat.v4.new_notebook()
    for number, cell in enumerate(cells):
        tags = list(cell.get("metadata", {}).get("tags", []))
        new = (
            nbformat.v4.new_code_cell(cell.source)
            if cell.cell_type == "code"
            else nbformat.v4.new_markdown_cell(cell.source)
        )
        if tags:
            new.metadata["tags"] = tags
        new.id = f"{stem[:2]}-{number:03d}"
        notebook.cells.append(new)
    notebook.metadata = _copy(metadata)
    nbformat.validate(notebook)
    return notebook


def _text(notebook) -> str:  # noqa: ANN001
    import nbformat

    return nbformat.writes(notebook) + "\n"


def instructor(cells: list, stem: str):  # noqa: ANN201
    """The instructor notebook of ``cells``: no outputs, the pairing metadata, stable ids."""
    return _finish(cells, stem, INSTRUCTOR_METADATA)


def strip_solution(source: str) -> str:
    """``source`` without the code between the solution markers; a ``# TODO`` takes its place
    (with ``...`` inside a block, which needs a statement)."""
    lines, out, inside = source.splitlines(), [], False
    for number, line in enumerate(lines, 1):
        marker = line.strip()
        if marker == SOLUTION_START:
            if inside:
                raise ValueError(f"line {number}: {SOLUTION_START} inside a solution")
            inside = True
            indent = line[: len(line) - len(line.lstrip())]
            out.append(f"{indent}...  {TODO}" if indent else TODO)
        elif marker == SOLUTION_END:
            if not inside:
                raise ValueError(f"line {number}: {SOLUTION_END} without {SOLUTION_START}")
            inside = False
        elif not inside:
            out.append(line)
    if inside:
        raise ValueError(f"{SOLUTION_START} without {SOLUTION_END}")
    return "\n".join(out)


def student(notebook, stem: str):  # noqa: ANN001, ANN201
    """The student edition of an instructor notebook: stubs for solutions, no worked answers."""
    cells = []
    for index, cell in enumerate(notebook.cells):
        tags = cell.get("metadata", {}).get("tags", [])
        if "solution" in tags and cell.cell_type == "markdown":
            continue
        cell = _copy(cell)
        if "solution" in tags:
            try:
                if SOLUTION_START not in cell.source:
                    raise ValueError(f"tagged 'solution' but has no {SOLUTION_START} line")
                cell.source = strip_solution(cell.source)
            except ValueError as error:
                raise ValueError(f"{cell_name(index, cell)}: {error}") from None
            cell.metadata["tags"] = ["exercise" if t == "solution" else t for t in tags]
        cells.append(cell)
    return _finish(cells, stem, STUDENT_METADATA)


def cell_name(index: int, cell) -> str:  # noqa: ANN001 - a notebook cell
    """How a message names cell ``index`` (from 0): its number from 1 and its first line, which
    find it in Jupyter and in the ``.py`` alike."""
    lines = cell.source.strip().splitlines()
    return f"cell {index + 1} ({lines[0][:60]!r})" if lines else f"cell {index + 1} (empty)"


# ---- which side was edited -----------------------------------------------------------------


def _digest(py_text: str) -> str:
    import hashlib

    return hashlib.sha256(py_text.encode()).hexdigest()[:16]


def _edited(ipynb: Path, py: Path) -> Path:
    """Which file of a pair holds the edit. Each sync records, in the notebook's metadata, a
    digest of the cells it wrote to both; the file whose cells no longer match it was edited
    (outputs are not cells: a notebook saved after running is not an edit). Without a record,
    the newer file."""
    notebook = read_notebook(ipynb)
    synced = notebook.metadata.get("wavegms", {}).get("synced")
    if synced is None:
        return max((ipynb, py), key=lambda path: path.stat().st_mtime_ns)
    changed = [
        path
        for path, text in ((ipynb, to_py(notebook)), (py, py.read_text()))
        if _digest(text) != synced
    ]
    if len(changed) == 2:
        raise SyncConflict(
            f"both {ipynb} and {py.name} were edited since the last sync, differently: keep "
            f"one (copy the other's edit into it, or undo it, e.g. `git checkout -- {py}`), "
            "then sync again."
        )
    return changed[0] if changed else max((ipynb, py), key=lambda p: p.stat().st_mtime_ns)


# ---- markdown lost in code cells -----------------------------------------------------------


def commented_markdown(notebook, stem: str) -> list[str]:  # noqa: ANN001
    """Code cells of ``notebook`` holding a markdown heading as a comment, in words."""
    problems = []
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type != "code":
            continue
        for line in cell.source.splitlines():
            if COMMENTED_HEADING.match(line):
                problems.append(
                    f"{stem} cell {index}: the code cell holds the markdown heading {line!r} as "
                    "a comment: put `# %% [markdown]` on the line above it in the .py (or make "
                    "it a markdown cell in Jupyter)"
                )
                break
    return problems


# ---- the opening cells every notebook shares -----------------------------------------------


def _tagged(notebook, tag: str) -> list:  # noqa: ANN001
    return [cell for cell in notebook.cells if tag in cell.get("metadata", {}).get("tags", [])]


def _common_part(tag: str, source: str) -> str:
    if tag != "parameters":
        return source
    lines = source.splitlines()
    end = next((i for i, line in enumerate(lines) if line.startswith("OUT_DIR =")), len(lines))
    return "\n".join(lines[: end + 1])


def opening_problems(notebooks: dict[str, object]) -> list[str]:
    """What differs between the notebooks' common opening cells, in words (empty: none)."""
    problems = []
    if not notebooks:
        return problems
    first = next(iter(notebooks))
    for stem, notebook in notebooks.items():
        head = notebook.cells[0].source if notebook.cells else ""
        if badge(stem) not in head:
            problems.append(f"{stem}: the first cell lacks its Colab badge {badge(stem)}")
        for tag in COMMON_CELLS:
            found = _tagged(notebook, tag)
            if len(found) != 1:
                problems.append(f"{stem}: {len(found)} cells tagged {tag!r}, expected 1")
                continue
            reference = _tagged(notebooks[first], tag)
            if stem != first and len(reference) == 1:
                mine = _common_part(tag, found[0].source)
                if mine != _common_part(tag, reference[0].source):
                    problems.append(
                        f"{stem}: the {tag!r} cell differs from {first}'s: the opening cells "
                        "are the same in every notebook, so copy the edit to all of them"
                    )
    return problems


# ---- sync ----------------------------------------------------------------------------------


def sync(folder: str | Path, *, check: bool = False, quiet: bool = False) -> list[str]:
    """Bring every notebook, its ``.py`` and its student edition in line (see the module doc).

    Nothing is written while any problem stands (a conflict, a damaged file, a cell marker
    that does not read back, ...): a half-synced course would hide it. With ``check``, write
    nothing at all. Returns the problems found, in words (empty: all in step).
    """
    folder = Path(folder)
    problems, instructors, sources = [], {}, {}
    for name in NOTEBOOKS:
        stem = name.removesuffix(".ipynb")
        try:
            source, cells = _edited_cells(folder / name, folder / f"{stem}.py")
        except (SyncConflict, ValueError, OSError) as error:
            problems.append(str(error))
            continue
        problems += _injected_cells(source, cells)
        instructors[stem], sources[stem] = instructor(cells, stem), source
    instructors = _ruff_formatted(instructors, folder)
    writes: dict[Path, tuple[str, Path]] = {}
    for stem, notebook in instructors.items():
        name, source = f"{stem}.ipynb", sources[stem]
        try:
            edition = student(notebook, stem)
        except ValueError as error:
            problems.append(f"{source}, {error}")
            continue
        notebook.metadata["wavegms"] = {"synced": _digest(to_py(notebook))}
        wanted = {
            folder / name: _text(notebook),
            folder / f"{stem}.py": to_py(notebook),
            folder / STUDENT_DIR / name: _text(edition),
        }
        for path, text in wanted.items():
            if (path.read_text() if path.is_file() else None) != text:
                writes[path] = (text, source)
    problems += opening_problems(instructors)
    for stem, notebook in instructors.items():
        problems += commented_markdown(notebook, stem)
    if check:
        problems += [
            f"{path} is out of step with {source.name} (or not formatted)"
            for path, (_, source) in writes.items()
        ]
        problems += section_times.problems(instructors, folder)
    elif not problems:
        for path, (text, source) in writes.items():
            _write(path, text)
            if not quiet:
                print(f"wrote {path} (from {source.name})")
    return problems


# ---- times ---------------------------------------------------------------------------------


def times(
    folder: str | Path, course_dir: str | Path | None = None, *, quiet: bool = False
) -> list[str]:
    """Write the time line of every section (:mod:`tools.section_times`) into the ``.py``
    sources of ``folder`` and sync. With ``course_dir``, a course run's ``course_times.json``
    first replaces the seconds of the notebooks it ran in ``folder/section_times.json``;
    without, the stored seconds are used (after an edit of a section's text).

    The course is synced first; nothing is written while any problem stands (a section not
    measured, a run without per-section seconds, ...). Returns the problems, in words."""
    from wavegms.course.timings import TIMES_FILE, read_times
    from wavegms.utils.atomic import atomic_write_text

    folder = Path(folder)
    try:
        stored = section_times.load(folder)
        if course_dir is not None:
            source = Path(course_dir) / TIMES_FILE
            if not source.is_file():
                raise FileNotFoundError(
                    f"{source} does not exist: run the quick course first (`wavegms course "
                    f"--out {course_dir}`), then this command."
                )
            run = read_times(course_dir)
            stored = section_times.from_run(run, stored or {}, str(source), NOTEBOOKS)
    except (OSError, ValueError) as error:
        return [str(error)]
    if stored is None:
        return [
            f"{folder / section_times.SECTION_TIMES} does not exist yet: run the quick course "
            "(`wavegms course --out build/course`), then `python -m tools.authoring times "
            "build/course`."
        ]
    problems = sync(folder, quiet=quiet)
    sources: dict[Path, str] = {}
    for name in NOTEBOOKS if not problems else ():
        stem = name.removesuffix(".ipynb")
        if name not in stored:
            problems.append(
                f"{stem}: no measured times, neither in {section_times.SECTION_TIMES} nor in the "
                "course run: run it (`wavegms course --out COURSE_DIR`), then `python -m "
                "tools.authoring times COURSE_DIR`"
            )
            continue
        py = folder / f"{stem}.py"
        cells, found = section_times.with_time_lines(_read_py(py), stem, stored[name])
        problems += found
        sources[py] = to_py(instructor(cells, stem))
    if problems:
        return problems
    if course_dir is not None:
        text = json.dumps({"notebooks": stored}, indent=2, ensure_ascii=False) + "\n"
        atomic_write_text(folder / section_times.SECTION_TIMES, text)
    for py, text in sources.items():
        if text != py.read_text():
            _write(py, text)
            if not quiet:
                print(f"wrote the time lines of {py}")
    return sync(folder, quiet=quiet)


def _edited_cells(ipynb: Path, py: Path) -> tuple[Path, list]:
    """The file of a pair that holds the edit, and its cells. ``ValueError`` (naming the
    file) for a damaged notebook or a ``.py`` cell marker that does not read back;
    :class:`SyncConflict` when both were edited."""
    if not py.is_file() and not ipynb.is_file():
        raise ValueError(f"{ipynb.stem}: neither {ipynb} nor {py.name} exists")
    if not py.is_file():
        return ipynb, read_notebook(ipynb).cells
    if ipynb.is_file():
        notebook = read_notebook(ipynb)
        if to_py(notebook) == py.read_text() or _edited(ipynb, py) == ipynb:
            return ipynb, notebook.cells
    return py, _read_py(py)


def _read_py(py: Path) -> list:
    """The cells of a ``py:percent`` file; ``ValueError`` naming the line of a cell marker
    that jupytext does not read as written (e.g. ``# %% tags=["parameters"`` loses its tag),
    which a sync would silently drop."""
    text = py.read_text()
    notebook = from_py(text)
    given = [(n, line) for n, line in enumerate(text.splitlines(), 1) if line.startswith("# %%")]
    read = [line for line in to_py(notebook).splitlines() if line.startswith("# %%")]
    for (number, line), back in zip(given, read):
        if line.rstrip() != back:
            raise ValueError(
                f"{py}, line {number}: the cell marker {line!r} reads as {back!r}: fix it "
                '(tags are written tags=["name"]), then sync again.'
            )
    return notebook.cells


def _injected_cells(source: Path, cells: list) -> list[str]:
    """A cell papermill injected (``injected-parameters``) means an executed copy was saved
    over the source: its absolute paths must not reach the course."""
    return [
        f"{source}, {cell_name(index, cell)}: papermill's injected-parameters cell (an executed "
        "copy was saved over the notebook): delete that cell, or restore the file from git"
        for index, cell in enumerate(cells)
        if "injected-parameters" in cell.get("metadata", {}).get("tags", [])
    ]


def _ruff_formatted(notebooks: dict[str, object], folder: Path) -> dict[str, object]:
    """``notebooks`` with their code cells formatted by ``ruff format`` (the repository's
    settings), so that a synced notebook passes ``ruff format --check``; as they are when
    ruff is not installed."""
    import shutil
    import tempfile

    import nbformat

    ruff = shutil.which("ruff")
    if ruff is None or not notebooks:
        return notebooks
    from wavegms.course.notebooks import repo_root

    # The repository's ruff settings: above the folder, else those of this package's checkout.
    candidates = [folder, *folder.parents, *([repo_root()] if repo_root() else [])]
    config = next(
        (p / "pyproject.toml" for p in candidates if (p / "pyproject.toml").is_file()), None
    )
    with tempfile.TemporaryDirectory() as scratch:
        paths = {stem: Path(scratch) / f"{stem}.ipynb" for stem in notebooks}
        for stem, path in paths.items():
            path.write_text(_text(notebooks[stem]))
        command = [ruff, "format", "--quiet", *map(str, paths.values())]
        if config is not None:
            command[2:2] = ["--config", str(config)]
        subprocess.run(command, check=False, capture_output=True)
        return {
            stem: instructor(nbformat.read(path, as_version=4).cells, stem)
            for stem, path in paths.items()
        }


def _write(path: Path, text: str) -> None:
    from wavegms.utils.atomic import atomic_write_text

    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.authoring",
        description="Keep the course notebooks, their .py sources and the student edition in "
        "step (see the README, 'Editing the course').",
    )
    parser.add_argument(
        "command",
        choices=("sync", "check", "times"),
        help="sync: write; check: CI; times: write each section's time line",
    )
    parser.add_argument(
        "course_dir",
        nargs="?",
        metavar="COURSE_DIR",
        help="times only: a course run (`wavegms course --out COURSE_DIR`, quick profile) whose "
        "measured seconds replace those in notebooks/section_times.json",
    )
    parser.add_argument(
        "--notebooks", default=None, help="the notebooks folder (default: the checkout's)"
    )
    args = parser.parse_args(argv)
    if args.course_dir is not None and args.command != "times":
        parser.error(f"COURSE_DIR ({args.course_dir}) is for `times` only")
    from wavegms.course.runner import notebooks_dir

    folder = Path(args.notebooks) if args.notebooks else notebooks_dir()
    if args.command == "times":
        problems = times(folder, args.course_dir)
    else:
        problems = sync(folder, check=args.command == "check")
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems and args.command == "check":
        print("Run `python -m tools.authoring sync`, then commit.", file=sys.stderr)
    elif problems and args.command == "times":
        print("No time line was written: fix the above, then run it again.", file=sys.stderr)
    elif problems:
        print("Nothing was written: fix the above, then sync again.", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
