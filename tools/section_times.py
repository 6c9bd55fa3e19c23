"""The time line of each course section, as Neuromatch gives one: how long a section takes,
its computing MEASURED by a course run, its reading and exercises ESTIMATED, with the arithmetic
of the estimate. Under each ``## `` heading of a notebook::

    ## 1. Packages

    *⏱ About 3 min: ~2 min to read (estimate: 310 words at 200 words/min), 35 s of computing
    (quick profile, measured on a 2-core Intel Xeon CPU).*

(one line in the notebook), and under its ``# `` title the same for the whole notebook, with
the date of the run. ``python -m tools.authoring times COURSE_DIR`` keeps the seconds that
``wavegms course --out COURSE_DIR`` measured per section (see
:mod:`wavegms.course.timings`) in ``notebooks/section_times.json`` and writes the lines; this
module computes them, and what ``check`` finds wrong with them. A section's words are those of
its markdown (link targets, bare URLs and HTML tags left out, a formula counted by its
space-separated pieces); its exercises are its ``### Exercise`` headings, the course's marker of
an exercise (each followed by a ``solution`` cell or a question answered in ``<details>``).
Only the standard library and :mod:`wavegms.course.timings` are imported.
"""

from __future__ import annotations

import copy
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wavegms.course.timings import sections
from wavegms.utils.jsonfile import read_json_object

SECTION_TIMES = "section_times.json"  # in notebooks/, committed
# Technical text with formulas and code names reads slower than prose (about 250 words/min).
WORDS_PER_MINUTE = 200
# One exercise: read its scaffold, write a few lines, run its check, perhaps once more; or
# think a question through before opening the answer. A guess, stated in every line.
EXERCISE_MINUTES = 5
MARK = "⏱"
TIME_LINE = re.compile(rf"^\*{MARK} .*\*\s*$")
EXERCISE = re.compile(r"^#{3,6}[ \t]+Exercise\b")
TITLE = re.compile(r"^#[ \t]+\S")
TOTAL = "the title (the notebook's total)"  # how a message names the line under the title
_LINK_TARGET = re.compile(r"\]\([^)]*\)")
_URL = re.compile(r"https?://\S+")
_HTML_TAG = re.compile(r"<[^>]+>")


# ---- the words of a line ---------------------------------------------------------------------


def count_words(lines: list[str]) -> int:
    """The words a reader reads in markdown ``lines``: tokens holding a letter or digit, after
    link targets, bare URLs and HTML tags are removed; time lines are not counted."""
    text = " ".join(line for line in lines if not TIME_LINE.match(line))
    text = _HTML_TAG.sub(" ", _URL.sub(" ", _LINK_TARGET.sub("] ", text)))
    return sum(1 for token in text.split() if re.search(r"\w", token))


def count_exercises(lines: list[str]) -> int:
    """The ``### Exercise`` headings among markdown ``lines``."""
    return sum(1 for line in lines if EXERCISE.match(line))


def _round(value: float) -> int:
    return math.floor(value + 0.5)  # half up, as a reader rounds (Python's round is half-even)


def duration(seconds: float) -> str:
    """``seconds`` as a reader wants them: "under 1 s", "35 s" under 90 s, "4 min" under 90
    minutes, else "2.5 h"."""
    if _round(seconds) < 1:
        return "under 1 s"
    if _round(seconds) < 90:
        return f"{_round(seconds)} s"
    if _round(seconds / 60) < 90:
        return f"{_round(seconds / 60)} min"
    return f"{seconds / 3600:.1f} h"


def reading_minutes(words: int, exercises: int) -> int:
    """The estimate of reading ``words`` and doing ``exercises``, in whole minutes (at least 1)."""
    return max(1, _round(words / WORDS_PER_MINUTE + exercises * EXERCISE_MINUTES))


def machine_name(machine: dict[str, Any]) -> str:
    """A machine of ``course_times.json`` in a few words, with its article: "a 2-core Intel
    Xeon CPU", "an NVIDIA T4 GPU"."""
    gpu = machine.get("gpu")
    if gpu:
        name = str(gpu) if "GPU" in str(gpu) else f"{gpu} GPU"
    else:
        # "Intel(R) Xeon(R) CPU @ 2.20GHz", "AMD EPYC 7B12 64-Core Processor": the make and model.
        cpu = re.sub(
            r"\((R|TM|tm)\)|@.*$|\b\d+-Core\b|\bCPU\b|\bProcessor\b", " ", str(machine.get("cpu"))
        )
        cpu = " ".join(cpu.split()) or "unknown"
        cores = machine.get("cores")
        name = f"{cores}-core {cpu} CPU" if cores else f"{cpu} CPU"
    return f"{'an' if re.match(r'[AEIOU]|NVIDIA|8|1[18]-', name, re.I) else 'a'} {name}"


def time_line(
    words: int,
    exercises: int,
    seconds: float | None,
    run: dict[str, Any],
    *,
    whole: bool = False,
) -> str:
    """The time line of a section (``whole``: of a notebook, dated) of ``words`` and
    ``exercises``, whose code took ``seconds`` in ``run`` (None: it has no code), where ``run``
    is the notebook's entry of ``section_times.json`` (profile, machine, date)."""
    minutes = reading_minutes(words, exercises)
    estimate = f"{words:,} words at {WORDS_PER_MINUTE} words/min"
    if exercises:
        plural = "s" if exercises > 1 else ""
        estimate += f" + {exercises} exercise{plural} at {EXERCISE_MINUTES} min"
    reading = f"~{minutes} min to read{' and do' if exercises else ''} (estimate: {estimate})"
    computing = ""
    if seconds is not None:
        date = f" on {run['date']}" if whole else ""
        computing = (
            f", {duration(seconds)} of computing ({run['profile']} profile, measured on "
            f"{machine_name(run['machine'])}{date})"
        )
    total = minutes * 60 + (seconds or 0)
    about = f"{max(1, _round(total / 60))} min" if total < 90 * 60 else f"{total / 3600:.1f} h"
    head = f"This notebook, about {about} in all" if whole else f"About {about}"
    return f"*{MARK} {head}: {reading}{computing}.*"


# ---- where the lines go ----------------------------------------------------------------------


@dataclass
class Place:
    """A time line to have: under line ``line`` of cell ``cell`` (a heading or the title),
    reading ``expected``; ``name`` is how a message names it ("section '1. Packages'")."""

    cell: int
    line: int
    name: str
    expected: str


def places(cells: list[Any], stem: str, run: dict[str, Any]) -> tuple[list[Place], list[str]]:
    """The time lines notebook ``stem`` (its nbformat ``cells``) should have, given its entry
    ``run`` of ``section_times.json``, and the problems that leave a line unknown (a section
    not measured, no title), in words."""
    measured: dict[str, list[float]] = {}
    for section in run["sections"]:
        measured.setdefault(section["title"], []).append(section["seconds"])
    found, problems, seen = [], [], {}
    words = exercises = 0
    seconds = 0.0
    title = None
    for section in sections(cells):
        text = section.text
        if section.heading is None:  # the opening: its title gets the notebook's total
            title = next(((c, n) for c, n, line in section.lines if TITLE.match(line)), None)
        occurrence = seen[section.title] = seen.get(section.title, -1) + 1
        if occurrence >= len(measured.get(section.title, [])):
            problems.append(
                f"{stem}, section {section.title!r}: no measured time in {SECTION_TIMES} (a new "
                "or renamed section?): run the quick course, then `python -m tools.authoring "
                "times COURSE_DIR`"
            )
            continue
        took = measured[section.title][occurrence]
        mine = count_words(text), count_exercises(text)
        words, exercises, seconds = words + mine[0], exercises + mine[1], seconds + took
        if section.heading is not None:
            line = time_line(*mine, took if section.code else None, run)
            found.append(Place(*section.heading, f"section {section.title!r}", line))
    if title is None:
        problems.append(
            f"{stem}: no `# ` title above the first `## ` heading, where the notebook's total "
            "time goes: add one"
        )
    elif not problems:
        total = time_line(words, exercises, seconds, run, whole=True)
        found.insert(0, Place(*title, TOTAL, total))
    return found, problems


def current_line(cells: list[Any], place: Place) -> str | None:
    """The time line under ``place``'s heading (the first line that is not blank), or None."""
    for line in cells[place.cell].source.splitlines()[place.line + 1 :]:
        if line.strip():
            return line if TIME_LINE.match(line) else None
    return None


def with_time_lines(cells: list[Any], stem: str, run: dict[str, Any]) -> tuple[list, list[str]]:
    """A copy of ``cells`` with exactly one time line under each heading and the title (those
    found anywhere else are removed), and the problems that stop it (the copy is then not to
    be used)."""
    cells = copy.deepcopy(cells)
    for cell in cells:
        if cell.cell_type == "markdown":
            cell.source = _without_time_lines(cell.source)
    found, problems = places(cells, stem, run)
    if problems:
        return cells, problems
    for place in sorted(found, key=lambda p: (p.cell, p.line), reverse=True):
        lines = cells[place.cell].source.splitlines()
        after = lines[place.line + 1 : place.line + 2]
        new = ["", place.expected] + ([""] if after and after[0].strip() else [])
        lines[place.line + 1 : place.line + 1] = new
        cells[place.cell].source = "\n".join(lines)
    return cells, []


def _without_time_lines(source: str) -> str:
    """``source`` without its time lines, and without the blank line each leaves doubled."""
    out: list[str] = []
    lines = source.splitlines()
    for index, line in enumerate(lines):
        if TIME_LINE.match(line):
            following = lines[index + 1] if index + 1 < len(lines) else ""
            if out and not out[-1].strip() and not following.strip():
                out.pop()  # "## Title", "", time line, "", text: one blank line stays
            continue
        out.append(line)
    return "\n".join(out)


# ---- section_times.json ----------------------------------------------------------------------


def load(folder: Path) -> dict[str, Any] | None:
    """``folder/section_times.json``'s notebooks (name -> entry), checked; None when there is
    no such file (no measured run yet: no time lines are asked for)."""
    path = folder / SECTION_TIMES
    if not path.is_file():
        return None
    notebooks = read_json_object(path).get("notebooks")
    fix = "restore it from git, or run `python -m tools.authoring times COURSE_DIR` again"
    if not isinstance(notebooks, dict):
        raise ValueError(f"{path}: 'notebooks' is not an object: {fix}.")
    for name, entry in notebooks.items():
        problem = _entry_problem(entry)
        if problem:
            raise ValueError(f"{path}: {name}: {problem}: {fix}.")
    return notebooks


def _entry_problem(entry: Any) -> str | None:  # noqa: ANN401 - JSON
    if not isinstance(entry, dict):
        return "not an object"
    for key, kind in (("profile", str), ("date", str), ("machine", dict), ("sections", list)):
        if not isinstance(entry.get(key), kind):
            return f"{key!r} is missing or not a {kind.__name__}"
    if not all(
        isinstance(s, dict)
        and isinstance(s.get("title"), str)
        and isinstance(s.get("seconds"), (int, float))
        for s in entry["sections"]
    ):
        return "'sections' is not a list of {'title': ..., 'seconds': ...}"
    return None


def from_run(
    run: dict[str, dict[str, Any]], stored: dict[str, Any], source: str, course: tuple[str, ...]
) -> dict[str, Any]:
    """``stored`` (notebook name -> entry) with the entries of ``run`` (``course_times.json``'s
    notebooks, read from ``source``) of the notebooks named in ``course``; ``ValueError`` for a
    run without per-section seconds or of the student edition."""
    notebooks = dict(stored)
    for name, entry in run.items():
        if name not in course:
            continue
        if "sections" not in entry:
            raise ValueError(
                f"{source}: {name} has no per-section seconds (a run of an older wavegms): run "
                "`wavegms course` again, then this command."
            )
        if entry.get("edition", "instructor") != "instructor":
            raise ValueError(
                f"{source}: {name} was run in the {entry.get('edition')} edition, whose "
                "exercises are left undone: measure the instructor edition (`wavegms course`)."
            )
        notebooks[name] = {
            "profile": entry.get("profile"),
            "date": str(entry["finished"])[:10] if entry.get("finished") else None,
            "machine": entry.get("machine"),
            "seconds": entry.get("seconds"),
            "sections": entry["sections"],
        }
        problem = _entry_problem(notebooks[name])
        if problem:
            raise ValueError(f"{source}: {name}: {problem}: run `wavegms course` again.")
    return {name: notebooks[name] for name in course if name in notebooks}


def problems(notebooks: dict[str, Any], folder: Path) -> list[str]:
    """What is wrong with the time lines of ``notebooks`` (stem -> instructor notebook), in
    words, one line each: a section without its line, or whose line differs from what
    ``folder/section_times.json`` and the section's text give. None are asked for before that
    file exists."""
    try:
        stored = load(folder)
    except (OSError, ValueError) as error:
        return [str(error)]
    if stored is None:
        return []
    found = []
    for stem, notebook in notebooks.items():
        run = stored.get(f"{stem}.ipynb")
        if run is None:
            found.append(
                f"{stem}: no measured times in {folder / SECTION_TIMES}: run the quick course, "
                "then `python -m tools.authoring times COURSE_DIR`"
            )
            continue
        wanted, missing = places(notebook.cells, stem, run)
        found += missing
        for place in wanted:
            line = current_line(notebook.cells, place)
            if line is None:
                why = "the time line under it is missing"
            elif line.strip() != place.expected:
                why = f"the time line under it is out of date (it should read {place.expected!r})"
            else:
                continue
            found.append(f"{stem}, {place.name}: {why}: run `python -m tools.authoring times`")
    return found
