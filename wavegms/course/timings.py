"""How long each notebook of a course run took, kept beside the executed notebooks.

``wavegms course`` records every notebook it finished in ``<out>/course_times.json``; the
course book (``wavegms book``) shows them as the measured times of the machine that ran it::

    {"notebooks": {"03_lmm_training.ipynb": {"seconds": 51.2, "profile": "quick",
                   "edition": "instructor", "finished": "2025-01-01T12:00:00+00:00",
                   "machine": {"cpu": "AMD EPYC ...", "cores": 2, "gpu": null},
                   "sections": [{"title": "Introduction", "seconds": 0.0},
                                {"title": "Setup", "seconds": 4.1}, ...]}}}

A notebook's sections are its ``## `` headings (course notebooks number them, "1. Packages");
what comes before the first one, the title and the introduction, is the section
:data:`OPENING`. A section's seconds are the sum of papermill's measured durations of its code
cells (kernel start and papermill's own work are in the notebook's ``seconds`` only). The
maintainers' ``python -m tools.authoring times`` turns them into the time line under each
heading of the course.

A run of some notebooks updates their entries and keeps the others. Only the standard library
is imported here, and torch only to name a GPU.
"""

from __future__ import annotations

import datetime
import functools
import os
import platform
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..utils.atomic import atomic_write_json
from ..utils.jsonfile import read_json_object

TIMES_FILE = "course_times.json"
OPENING = "Introduction"  # the section before a notebook's first `## ` heading
# A level-2 markdown heading ("## 1. Packages"; "### Exercise 1" is not one), and the line
# that opens or closes a fenced code block, inside which nothing is a heading.
SECTION_HEADING = re.compile(r"^##[ \t]+(\S.*?)(?:[ \t]+#+)?[ \t]*$")
FENCE = re.compile(r"^(```|~~~)")


@functools.cache
def machine() -> dict[str, Any]:
    """The CPU's model, its core count and the GPU PyTorch sees (None: none)."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as info:
            cpu = next(
                line.split(":", 1)[1].strip() for line in info if line.startswith("model name")
            )
    except (OSError, StopIteration):
        pass
    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {"cpu": cpu, "cores": os.cpu_count(), "gpu": gpu}


def read_times(course_dir: str | os.PathLike) -> dict[str, dict[str, Any]]:
    """notebook file name -> its entry (see the module's docstring); {} before any run."""
    path = Path(course_dir) / TIMES_FILE
    if not path.is_file():
        return {}
    notebooks = read_json_object(path).get("notebooks", {})
    if not isinstance(notebooks, dict):
        raise ValueError(f"{path}: 'notebooks' is not an object: delete the file and rerun.")
    return notebooks


# ---- sections -------------------------------------------------------------------------------


@dataclass
class Section:
    """One section of a notebook: its title, its markdown lines and its code cells.

    ``lines`` are ``(cell index, line index, text)`` of every markdown line from its heading
    (included) to the next section's; ``heading`` is where its heading is, ``(cell index, line
    index)``, None for the :data:`OPENING` section."""

    title: str
    heading: tuple[int, int] | None = None
    lines: list[tuple[int, int, str]] = field(default_factory=list)
    code: list[Any] = field(default_factory=list)

    @property
    def text(self) -> list[str]:
        """Its markdown lines, without their places."""
        return [line for _, _, line in self.lines]


def headings(markdown: str) -> dict[int, str]:
    """line index -> title of each ``## `` heading of ``markdown``, outside fenced code."""
    found, fenced = {}, False
    for index, line in enumerate(markdown.splitlines()):
        if FENCE.match(line):
            fenced = not fenced
        elif not fenced and (match := SECTION_HEADING.match(line)):
            found[index] = match[1]
    return found


def sections(cells: Iterable[Any]) -> list[Section]:
    """The sections of a notebook's ``cells`` (nbformat cells), in order: each code cell belongs
    to the last ``## `` heading above it, each markdown line to the last heading above it, in
    its cell or an earlier one (a heading may start in the middle of a cell). The
    :data:`OPENING` section is left out when nothing comes before the first heading."""
    found = [Section(OPENING)]
    for cell_index, cell in enumerate(cells):
        if cell.cell_type == "code":
            found[-1].code.append(cell)
        elif cell.cell_type == "markdown":
            titles = headings(cell.source)
            for line_index, line in enumerate(cell.source.splitlines()):
                if line_index in titles:
                    found.append(Section(titles[line_index], (cell_index, line_index)))
                found[-1].lines.append((cell_index, line_index, line))
    opening = found[0]
    return found if opening.lines or opening.code else found[1:]


def section_seconds(notebook: Any) -> list[dict[str, Any]]:  # noqa: ANN401 - a NotebookNode
    """``[{"title": ..., "seconds": ...}]``, a notebook's sections in order, from an executed
    notebook: the sum of papermill's ``duration`` (seconds) of each section's code cells, a
    cell without one (not run, or not by papermill) counting 0."""
    return [
        {
            "title": section.title,
            "seconds": round(sum(_duration(cell) for cell in section.code), 1),
        }
        for section in sections(notebook.cells)
    ]


def _duration(cell: Any) -> float:  # noqa: ANN401 - a notebook cell
    duration = cell.get("metadata", {}).get("papermill", {}).get("duration")
    return float(duration) if isinstance(duration, (int, float)) else 0.0


# ---- the record ----------------------------------------------------------------------------


def record_time(
    course_dir: str | os.PathLike,
    notebook: str,
    seconds: float,
    *,
    profile: str,
    edition: str,
    sections: list[dict[str, Any]] | None = None,
) -> None:
    """Add or replace ``notebook``'s entry in ``course_dir/course_times.json`` (atomically),
    with its per-section seconds when given (:func:`section_seconds`); a damaged file is
    started again rather than stopping the course."""
    try:
        notebooks = read_times(course_dir)
    except ValueError:
        notebooks = {}
    notebooks[notebook] = {
        "seconds": round(seconds, 1),
        "profile": profile,
        "edition": edition,
        "finished": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine(),
    }
    if sections is not None:
        notebooks[notebook]["sections"] = sections
    atomic_write_json(Path(course_dir) / TIMES_FILE, {"notebooks": notebooks})


__all__ = [
    "OPENING",
    "TIMES_FILE",
    "Section",
    "headings",
    "machine",
    "read_times",
    "record_time",
    "section_seconds",
    "sections",
]
