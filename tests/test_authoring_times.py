"""The time line of each course section (issue 19, item 7): `python -m tools.authoring times`
writes, under every ``## `` heading, the measured computing of a course run and the estimated
reading, with its arithmetic, and the notebook's total under its title; `check` fails while a
line is missing or differs from the stored measurement and the section's current text. The
course runs are fake ``course_times.json`` files: nothing is executed."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import nbformat
import pytest

from tools import authoring, section_times
from wavegms.course.notebooks import NOTEBOOKS
from wavegms.course.timings import TIMES_FILE, sections

NOTEBOOK_DIR = Path(__file__).resolve().parents[1] / "notebooks"
XEON = {"cpu": "Intel(R) Xeon(R) CPU @ 2.20GHz", "cores": 2, "gpu": None}
# A section of known size, added to 00_setup: its heading's 1 word, 2 exercise headings of 2
# words each and 195 words of text: 200 words, a minute of reading, and 2 exercises of 5.
TIMED = "\n".join(
    [
        "",
        "# %% [markdown]",
        "# ## Timed",
        "#",
        "# " + " ".join(["word"] * 95),
        "#",
        "# ### Exercise A",
        "#",
        "# " + " ".join(["word"] * 100),
        "#",
        "# ### Exercise B",
        "",
        "# %%",
        "x = 1",
        "",
    ]
)
# 1 min + 2 x 5 min of reading and doing, and 35 s of computing: 11 min 35 s, about 12 min.
TIMED_LINE = (
    "*⏱ About 12 min: ~11 min to read and do (estimate: 200 words at 200 words/min + 2 "
    "exercises at 5 min), 35 s of computing (quick profile, measured on a 2-core Intel Xeon "
    "CPU).*"
)


def _course(tmp_path: Path) -> Path:
    """A copy of the course's notebooks, 00_setup with the section 'Timed' at its end."""
    folder = tmp_path / "notebooks"
    shutil.copytree(NOTEBOOK_DIR, folder, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    (folder / section_times.SECTION_TIMES).unlink(missing_ok=True)
    with (folder / "00_setup.py").open("a") as source:
        source.write(TIMED)
    assert authoring.sync(folder, quiet=True) == []
    return folder


def _run(folder: Path, tmp_path: Path, seconds: dict[str, float]) -> Path:
    """A course run's folder holding a ``course_times.json`` of every notebook in ``folder``:
    each section measured 0 s, but for ``seconds`` (section title -> seconds, in 00_setup)."""
    notebooks = {}
    for name in NOTEBOOKS:
        cells = nbformat.read(folder / name, as_version=4).cells
        measured = [
            {
                "title": s.title,
                "seconds": seconds.get(s.title, 0.0) if name == "00_setup.ipynb" else 0.0,
            }
            for s in sections(cells)
        ]
        notebooks[name] = {
            "seconds": sum(s["seconds"] for s in measured) + 1.5,
            "profile": "quick",
            "edition": "instructor",
            "finished": "2025-01-02T10:00:00+00:00",
            "machine": XEON,
            "sections": measured,
        }
    run = tmp_path / "course"
    run.mkdir(exist_ok=True)
    (run / TIMES_FILE).write_text(json.dumps({"notebooks": notebooks}))
    return run


def _check(folder: Path, capsys) -> tuple[int, list[str]]:
    code = authoring.main(["check", "--notebooks", str(folder)])
    return code, capsys.readouterr().err.strip().splitlines()


def _times(folder: Path, capsys, *course: Path) -> int:
    code = authoring.main(["times", *map(str, course), "--notebooks", str(folder)])
    capsys.readouterr()
    return code


def _under(text: str, heading: str) -> str:
    """The first line that is not blank under ``heading`` in a ``.py`` source."""
    after = text.split(f"\n# {heading}\n", 1)[1].splitlines()
    return next(line for line in after if line.strip("# "))[2:]


def test_the_times_command_writes_each_sections_line_from_a_course_run(tmp_path, capsys):
    folder = _course(tmp_path)
    assert _check(folder, capsys) == (0, []), "no line is asked for before a measured run"
    run = _run(folder, tmp_path, {"Timed": 35.0, "Setup": 60.0})

    assert _times(folder, capsys, run) == 0

    stored = json.loads((folder / section_times.SECTION_TIMES).read_text())["notebooks"]
    assert list(stored) == list(NOTEBOOKS)
    setup = stored["00_setup.ipynb"]
    assert (setup["profile"], setup["date"], setup["machine"]) == ("quick", "2025-01-02", XEON)
    assert {"title": "Timed", "seconds": 35.0} in setup["sections"]
    source = (folder / "00_setup.py").read_text()
    assert _under(source, "## Timed") == TIMED_LINE
    # The total, under the title: 35 + 60 s measured, and the whole notebook's reading.
    intro = nbformat.read(folder / "00_setup.ipynb", as_version=4).cells[0].source.splitlines()
    assert intro[0].startswith("# 00 · ") and intro[1] == ""
    total = intro[2]
    assert re.fullmatch(
        r"\*⏱ This notebook, about \d+ min in all: ~\d+ min to read and do \(estimate: "
        r"[\d,]+ words at 200 words/min \+ 4 exercises at 5 min\), 2 min of computing \(quick "
        r"profile, measured on a 2-core Intel Xeon CPU on 2025-01-02\)\.\*",
        total,
    ), total
    for name in NOTEBOOKS:  # every section, in both editions
        for edition in (folder / name, folder / "student" / name):
            cells = nbformat.read(edition, as_version=4).cells
            for section in sections(cells)[1:]:
                line = section.text[2]
                assert section.text[1] == "" and line.startswith("*⏱ About "), (edition, line)
    assert _check(folder, capsys) == (0, []), "the lines written are the lines checked"
    before = {p: p.read_text() for p in folder.rglob("*") if p.is_file()}
    assert _times(folder, capsys) == 0
    assert {p: p.read_text() for p in folder.rglob("*") if p.is_file()} == before


@pytest.fixture
def timed(tmp_path, capsys) -> Path:
    """A course whose time lines were written from a fake run."""
    folder = _course(tmp_path)
    assert _times(folder, capsys, _run(folder, tmp_path, {"Timed": 35.0})) == 0
    return folder


def _edit(folder: Path, old: str, new: str) -> None:
    source = folder / "00_setup.py"
    text = source.read_text()
    assert old in text
    source.write_text(text.replace(old, new, 1))
    assert authoring.sync(folder, quiet=True) == []


def test_check_fails_on_a_missing_line_and_times_puts_it_back(timed, capsys):
    _edit(timed, f"# ## Timed\n#\n# {TIMED_LINE}\n", "# ## Timed\n")
    code, problems = _check(timed, capsys)
    assert code == 1
    assert (
        "00_setup, section 'Timed': the time line under it is missing: run `python -m "
        "tools.authoring times`"
    ) in problems
    assert _times(timed, capsys) == 0
    assert _under((timed / "00_setup.py").read_text(), "## Timed") == TIMED_LINE
    assert _check(timed, capsys) == (0, [])


def test_check_fails_when_the_text_changed_and_times_updates_the_line(timed, capsys):
    _edit(timed, "# ### Exercise B\n", "# ### Exercise B\n#\n# " + " ".join(["more"] * 200) + "\n")
    code, problems = _check(timed, capsys)
    stale = TIMED_LINE.replace("12 min: ~11", "13 min: ~12").replace("200 words", "400 words", 1)
    assert code == 1
    assert (
        f"00_setup, section 'Timed': the time line under it is out of date (it should read "
        f"{stale!r}): run `python -m tools.authoring times`"
    ) in problems
    assert any(
        p.startswith("00_setup, the title (the notebook's total): the time") for p in problems
    )
    assert _times(timed, capsys) == 0
    assert _under((timed / "00_setup.py").read_text(), "## Timed") == stale
    assert _check(timed, capsys) == (0, [])


def test_check_fails_when_the_stored_measurement_changed(timed, capsys):
    path = timed / section_times.SECTION_TIMES
    path.write_text(path.read_text().replace('"seconds": 35.0', '"seconds": 95.0'))
    code, problems = _check(timed, capsys)
    assert code == 1
    assert any(
        p.startswith("00_setup, section 'Timed': the time line under it is out of date")
        and "2 min of computing" in p
        for p in problems
    ), problems


def test_a_section_added_after_the_run_is_named_and_nothing_is_written(timed, capsys):
    _edit(timed, "# ### Exercise B\n", "# ## Unmeasured\n#\n# New text.\n")
    code, problems = _check(timed, capsys)
    assert code == 1 and any(
        p.startswith("00_setup, section 'Unmeasured': no measured time in section_times.json")
        for p in problems
    )
    before = {p: p.read_text() for p in timed.rglob("*") if p.is_file()}
    assert _times(timed, capsys) == 1
    assert {p: p.read_text() for p in timed.rglob("*") if p.is_file()} == before


def test_a_run_without_sections_or_of_the_student_edition_is_refused(tmp_path, capsys):
    folder = tmp_path / "notebooks"
    folder.mkdir()
    run = tmp_path / "course"
    assert "course_times.json does not exist" in authoring.times(folder, run)[0]
    run.mkdir()
    entry = {"seconds": 1.0, "profile": "quick", "edition": "instructor", "finished": "x"}
    (run / TIMES_FILE).write_text(json.dumps({"notebooks": {"00_setup.ipynb": entry}}))
    (problem,) = authoring.times(folder, run)
    assert "00_setup.ipynb has no per-section seconds" in problem
    entry.update(edition="student", sections=[])
    (run / TIMES_FILE).write_text(json.dumps({"notebooks": {"00_setup.ipynb": entry}}))
    (problem,) = authoring.times(folder, run)
    assert "run in the student edition" in problem and not list(folder.iterdir())


def test_the_line_rounds_and_names_the_machine():
    run = {"profile": "quick", "date": "2025-01-02", "machine": XEON}
    assert section_times.time_line(210, 1, 35.0, run) == (
        "*⏱ About 7 min: ~6 min to read and do (estimate: 210 words at 200 words/min + 1 "
        "exercise at 5 min), 35 s of computing (quick profile, measured on a 2-core Intel Xeon "
        "CPU).*"
    )
    assert section_times.time_line(90, 0, None, run) == (
        "*⏱ About 1 min: ~1 min to read (estimate: 90 words at 200 words/min).*"
    )
    assert [section_times.duration(s) for s in (0.4, 89.4, 90, 5400, 9000)] == [
        "under 1 s",
        "89 s",
        "2 min",
        "1.5 h",
        "2.5 h",
    ]
    names = [
        {"cpu": "AMD EPYC 7B12 64-Core Processor", "cores": 8, "gpu": None},
        {"cpu": "x", "cores": 2, "gpu": "NVIDIA H100 80GB HBM3"},
        {"cpu": "x", "cores": 2, "gpu": "Tesla T4"},
    ]
    assert [section_times.machine_name(m) for m in names] == [
        "an 8-core AMD EPYC 7B12 CPU",
        "an NVIDIA H100 80GB HBM3 GPU",
        "a Tesla T4 GPU",
    ]
    # Link targets, URLs, HTML tags, markup and time lines are not read as words.
    lines = ["## A [link](https://x.org/a b) to <b>bold</b> https://y.org | --- |", TIMED_LINE]
    assert section_times.count_words(lines) == 4  # A, [link], to, bold
