"""Build the course book: the notebooks executed by ``wavegms course`` as a website.

The pages are staged in a temporary folder beside the book (the landing page, the six
notebooks, the paper map, the measured times, the pipeline figure), Sphinx with myst-nb and
sphinx-book-theme turns them into HTML without executing anything, and the new ``html/``
replaces the old one only once it is complete.
"""

from __future__ import annotations

import io
import os
import shutil
import tempfile
import time
from pathlib import Path

import nbformat

from ..notebooks import NOTEBOOKS, repo_root
from ..timings import read_times
from . import pages
from .notebooks import as_page, check_executed

CONF_DIR = Path(__file__).resolve().parent  # conf.py and _static/
SOURCES = "_notebooks"  # the executed notebooks as they are, for the download links


def build_book(
    course_dir: str | os.PathLike = "build/course",
    out_dir: str | os.PathLike = "build/book",
    *,
    strict: bool = False,
) -> Path:
    """Build the book from an executed course into ``out_dir/html``; returns its index page.

    Args:
        course_dir: the ``--out`` folder of ``wavegms course``: the six executed instructor
            notebooks and ``course_times.json``.
        out_dir: where ``html/`` (the site to publish) and ``sphinx.log`` go.
        strict: fail on any Sphinx warning (a broken link, an unreadable image) instead of
            listing the warnings.

    Raises:
        FileNotFoundError: a notebook of the course is missing from ``course_dir``.
        ValueError: a notebook was not executed, failed, or is the student edition.
        RuntimeError: Sphinx is not installed, or the build failed (``strict``: warned).
    """
    try:
        from sphinx.application import Sphinx
    except ModuleNotFoundError:
        raise RuntimeError(
            "The course book needs Sphinx, myst-nb and sphinx-book-theme: pip install -e '.[book]'."
        ) from None
    began = time.perf_counter()
    course_dir, out_dir = Path(course_dir).expanduser(), Path(out_dir).expanduser()
    out_dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".building-", dir=out_dir))
    try:
        source = work / "source"
        count = _stage(course_dir, source)
        print(f"Building the course book from {course_dir} ({count} notebooks) ...")
        log, warnings = io.StringIO(), io.StringIO()
        app = Sphinx(
            source,
            CONF_DIR,
            work / "html",
            work / "doctrees",
            "html",
            status=log,
            warning=warnings,
            freshenv=True,
            warningiserror=strict,
        )
        try:
            app.build()
        finally:
            (out_dir / "sphinx.log").write_text(log.getvalue() + warnings.getvalue())
        if app.statuscode:
            raise RuntimeError(f"Sphinx failed to build the book: see {out_dir / 'sphinx.log'}.")
        _replace(work / "html", out_dir / "html")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    for line in warnings.getvalue().splitlines():
        print(f"  warning: {line}")
    index = out_dir / "html" / "index.html"
    print(f"The course book is {index} (built in {time.perf_counter() - began:.0f} s).")
    return index


def _stage(course_dir: Path, source: Path) -> int:
    """Write the book's source pages into ``source``; returns the number of notebooks."""
    missing = [name for name in NOTEBOOKS if not (course_dir / name).is_file()]
    if missing:
        raise FileNotFoundError(
            f"{course_dir} has no executed {', '.join(missing)}: run `wavegms course --out "
            f"{course_dir}` first (the book shows the notebooks as that run left them)."
        )
    root = repo_root()
    paper_map = root / "docs" / "paper_map.md" if root else None
    if paper_map is None or not paper_map.is_file():
        raise FileNotFoundError(
            "docs/paper_map.md was not found: run `wavegms book` from a clone of the repository."
        )
    (source / SOURCES).mkdir(parents=True)
    times = read_times(course_dir)
    infos = []
    for name in NOTEBOOKS:
        path = course_dir / name
        notebook = nbformat.read(path, as_version=4)
        check_executed(path, notebook)
        info = pages.describe(path, notebook)
        infos.append(info)
        shutil.copy2(path, source / SOURCES / name)
        links = (
            f"[Open in Colab]({info.colab}) (the student edition, exercises to do) · "
            f"{{download}}`Download this notebook (.ipynb) <{SOURCES}/{name}>` · measured "
            f"here: {pages.seconds_text(times.get(name))}"
        )
        nbformat.write(as_page(notebook, links), source / name)
    (source / "index.md").write_text(pages.landing_page(infos, times))
    (source / f"{pages.PAPER_MAP}.md").write_text(pages.paper_map_page(paper_map.read_text()))
    (source / f"{pages.TIMES}.md").write_text(pages.times_page(infos, times))
    _pipeline_figure(source / pages.PIPELINE_FIGURE)
    return len(infos)


def _pipeline_figure(path: Path) -> None:
    from ...engine.viz import plot_pipeline, save_figure

    save_figure(plot_pipeline(), path)


def _replace(new: Path, target: Path) -> None:
    """Put the folder ``new`` at ``target``; the old book goes only once the new one is there."""
    old = target.with_name(f".{target.name}-old")
    shutil.rmtree(old, ignore_errors=True)
    if target.exists():
        target.rename(old)
    new.rename(target)
    shutil.rmtree(old, ignore_errors=True)


__all__ = ["build_book"]
