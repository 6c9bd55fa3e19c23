"""Run the course: every notebook executed with papermill, in order (``wavegms course``).

Instructors run the whole course in one command; each notebook is executed, saved executed,
and exported to HTML, with a progress line per notebook (cells done / total, elapsed)::

    wavegms course                                   # quick: CPU, synthetic data, 64 px
    wavegms course --edition student                 # the students' notebooks, stubs and all
    wavegms course --profile full --dataset busi --data data   # a real dataset on a GPU
    wavegms course --cell-timeout 3600               # a slow machine: an hour per cell
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import os
import re
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..utils.atomic import staged_file
from .execution import (
    CELL_TIMEOUT_S,
    check_kernel,
    execute,
    export_html,
    failure,
    failure_message,
    resolve_cell_timeout,
)
from .notebooks import (
    NOTEBOOKS,
    PROFILES,
    REPO_URL,
    is_executed,
    read_notebook,
    repo_root,
    resolve_data_dir,
)
from .timings import record_time, section_seconds

EDITIONS = {"instructor": ".", "student": "student"}  # folder under notebooks/


class CourseError(RuntimeError):
    """A notebook failed; the message names the notebook, the cell and the error."""

    def __init__(
        self, message: str, *, notebook: str, cell_index: int | None, executed: Path | None
    ) -> None:
        super().__init__(message)
        self.notebook = notebook
        self.cell_index = cell_index
        self.executed = executed


def notebooks_dir(edition: str = "instructor") -> Path:
    """The ``notebooks/`` folder of the checkout this package runs from (``notebooks/student``
    for the student edition)."""
    if edition not in EDITIONS:
        raise ValueError(f"Unknown edition {edition!r}: choose one of {', '.join(EDITIONS)}.")
    root = repo_root()
    folder = (root / "notebooks" / EDITIONS[edition]).resolve() if root else None
    if folder is None or not folder.is_dir():
        raise FileNotFoundError(
            "The course notebooks were not found: run `wavegms course` from a clone of "
            f"{REPO_URL} (git clone {REPO_URL} && cd wavegms && pip install -e '.[notebooks]')."
        )
    return folder


def select_notebooks(names: Iterable[str] | None, folder: Path) -> list[Path]:
    """The notebooks to run, in course order. ``names`` are file names, stems or prefixes
    such as ``"03"``; None means all of them."""
    paths = [folder / name for name in NOTEBOOKS]
    if names is None:
        chosen = paths
    else:
        chosen = []
        for name in names:
            stem = Path(str(name)).name.removesuffix(".ipynb")
            matches = [p for p in paths if p.stem == stem or p.stem.startswith(stem)]
            if len(matches) != 1:
                raise ValueError(
                    f"Notebook {name!r} matches {len(matches)} course notebooks; use one of "
                    f"{', '.join(p.stem for p in paths)} (or a unique prefix such as '03')."
                )
            chosen.append(matches[0])
        chosen = sorted(set(chosen), key=paths.index)
    for path in chosen:
        if not path.is_file():
            raise FileNotFoundError(f"Course notebook {path} is missing from the checkout.")
    return chosen


def profile_parameters(
    profile: str, out_dir: Path, overrides: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The papermill parameters of ``profile`` with ``overrides``; OUT_DIR is ``out_dir/work``."""
    if profile not in PROFILES:
        raise ValueError(f"Unknown profile {profile!r}: choose one of {', '.join(PROFILES)}.")
    values = {**PROFILES[profile], "OUT_DIR": str(out_dir.resolve() / "work")}
    values.update(overrides or {})
    data_dir = Path(values["DATA_DIR"]).expanduser()
    # The kernel may start elsewhere than the instructor's shell: pass folders absolute.
    values["DATA_DIR"] = str(resolve_data_dir(data_dir).resolve())
    return values


def _declared_parameters(path: Path) -> set[str]:
    import papermill

    read_notebook(path)  # a damaged notebook: one line naming it, not papermill's traceback
    return set(papermill.inspect_notebook(str(path)))


def _check_out_dir(out_dir: Path, paths: Sequence[Path]) -> None:
    """``ValueError`` when running would write over a notebook this command did not execute:
    a course source (``--out notebooks``) or a file of the user's."""
    for path in paths:
        target = out_dir / path.name
        if target.exists() and (target.resolve() == path.resolve() or not is_executed(target)):
            raise ValueError(
                f"--out {out_dir} holds {target}, a notebook that `wavegms course` did not "
                "execute (a course source?): its executed copy would be written over it; "
                "nothing was written. Choose another --out (the default is build/course)."
            )


def run_course(
    profile: str = "quick",
    out_dir: str | os.PathLike = "build/course",
    notebooks: Sequence[str] | None = None,
    parameters: Mapping[str, Any] | None = None,
    kernel: str | None = None,
    *,
    edition: str = "instructor",
    source_dir: str | os.PathLike | None = None,
    cell_timeout: float | str | None = "profile",
) -> list[Path]:
    """Execute the course notebooks in order with papermill and export each to HTML.

    Args:
        profile: ``"quick"`` (CPU, synthetic data, small images; the notebooks' defaults) or
            ``"full"`` (a real dataset at 224 px on a GPU); see :data:`PROFILES`.
        out_dir: where ``<notebook>.ipynb`` (executed) and ``<notebook>.html`` are written;
            runs and figures go to ``out_dir/work`` (the notebooks' ``OUT_DIR``).
        notebooks: names, stems or prefixes (``["00", "03"]``) to run; None runs all.
        parameters: papermill parameters overriding the profile's, e.g. ``{"EPOCHS": 20}``.
            Each notebook receives only the parameters its ``parameters`` cell declares.
        kernel: the Jupyter kernel name (default: the notebooks' own, ``python3``).
        edition: ``"instructor"`` (``notebooks/``, with solutions) or ``"student"``
            (``notebooks/student/``, exercises left to do).
        source_dir: the folder holding the notebooks (default: the edition's folder).
        cell_timeout: the seconds a cell may run before it is stopped and the course fails;
            ``"profile"``: the profile's (:data:`~.execution.CELL_TIMEOUT_S`: 1800 s for
            quick, no limit for full); 0, None or ``"none"``: no limit.

    Returns:
        The executed notebooks' paths, in order.

    Raises:
        CourseError: a notebook failed; the message names it, the cell and the error, and
            the partly executed notebook is saved for inspection.
        ValueError: before anything is written: ``out_dir`` holds a notebook this command did
            not execute (e.g. the sources: ``out_dir="notebooks"``), ``kernel`` is not
            installed, ``cell_timeout`` is not a number of seconds, or a notebook is damaged (the
            message names it).
    """
    out_dir = Path(out_dir).expanduser()
    folder = Path(source_dir).expanduser() if source_dir is not None else notebooks_dir(edition)
    paths = select_notebooks(notebooks, folder)
    # Everything is checked before anything is written: no empty folder is left behind.
    values = profile_parameters(profile, out_dir, parameters)
    limit = resolve_cell_timeout(cell_timeout, profile)
    check_kernel(kernel)
    _check_out_dir(out_dir, paths)
    declared = {path: _declared_parameters(path) for path in paths}
    unknown = set(parameters or {}) - set().union(*declared.values())
    if unknown:
        raise ValueError(
            f"Unknown notebook parameter(s) {', '.join(sorted(unknown))}: the notebooks declare "
            f"{', '.join(sorted(set().union(*declared.values())))}."
        )
    if profile == "full" and values["DATASET"] != "synthetic":
        # A full course on synthetic data by accident would waste GPU time (300 epochs): stop now.
        root = Path(values["DATA_DIR"]) / values["DATASET"]
        if not root.is_dir():
            raise FileNotFoundError(
                f"The full profile needs {values['DATASET']!r} prepared in {root.parent}: run "
                f"`python -m data_download {values['DATASET']} --root {root.parent}` first, or "
                "pass --dataset and --data."
            )
    out_dir.mkdir(parents=True, exist_ok=True)
    Path(values["OUT_DIR"]).mkdir(parents=True, exist_ok=True)
    print(f"Running {len(paths)} notebook(s), profile {profile!r}, into {out_dir}")
    executed = []
    with _widgets_off():
        for number, path in enumerate(paths, 1):
            target = out_dir / path.name
            began = time.perf_counter()
            label = f"[{number}/{len(paths)}] {path.stem}"
            params = {k: v for k, v in values.items() if k in declared[path]}
            # A failed notebook is kept too (executed up to the failing cell), to be inspected.
            with staged_file(target, suffix=".ipynb") as partial:
                failed = execute(path, partial, params, kernel, limit, label)
            export_html(target, target.with_suffix(".html"))
            if failed is not None:
                print(f"[{number}/{len(paths)}] {path.stem:<36} FAILED after {_seconds(began)}")
                where = failure(failed, target)
                raise CourseError(
                    failure_message(path.name, where, target, limit),
                    notebook=path.name,
                    cell_index=where["cell"],
                    executed=target,
                ) from None
            print(f"[{number}/{len(paths)}] {path.stem:<36} ok  {_seconds(began)}")
            elapsed = time.perf_counter() - began  # what the course book shows, per notebook
            sections = section_seconds(read_notebook(target))  # for `tools.authoring times`
            record_time(
                out_dir, path.name, elapsed, profile=profile, edition=edition, sections=sections
            )
            executed.append(target)
    print(f"Executed notebooks and their HTML exports are in {out_dir}")
    return executed


@contextlib.contextmanager
def _widgets_off() -> Iterator[None]:
    """Kernels started inside get ``WAVEGMS_NO_WIDGETS=1``: static figures only, and
    ``WAVEGMS_WIDGET_FRAMES=1``: small browsers keep every figure, for the course book.

    nbclient, which papermill drives, can wait forever on a cell that opens ipywidgets
    (jupyter/nbclient#312; we saw it hang on notebook 01), and a headless run keeps only the
    static figures anyway.
    """
    from .widgets import FRAMES_ENV, NO_WIDGETS_ENV

    previous = {name: os.environ.get(name) for name in (NO_WIDGETS_ENV, FRAMES_ENV)}
    os.environ.update(dict.fromkeys(previous, "1"))
    try:
        yield
    finally:
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _seconds(began: float) -> str:
    return f"{time.perf_counter() - began:6.1f} s"


# ---- `wavegms course` ----------------------------------------------------------------------

HELP = "execute the course notebooks with papermill (quick: CPU + synthetic data)"
DESCRIPTION = (
    "Execute every course notebook in order with papermill and write the executed notebooks "
    "and an HTML export of each to --out. Profile 'quick' runs on a CPU with synthetic data in "
    "a few minutes; 'full' trains on a real dataset (prepare it first with "
    "`python -m data_download <dataset> --root DATA_DIR`) and wants a GPU."
)


def _parse_value(text: str) -> Any:  # noqa: ANN401
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text  # a bare word such as busi or cuda


def _parse_assignment(text: str) -> tuple[str, Any]:
    match = re.fullmatch(r"([A-Za-z_]\w*)=(.*)", text)
    if not match:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE (e.g. EPOCHS=20), got {text!r}")
    return match[1], _parse_value(match[2])


def _parse_cell_timeout(text: str) -> float | str | None:
    """--cell-timeout's value, checked; ``"profile"`` (the default) is left for run_course to
    resolve, as the profile is not known yet."""
    if text == "profile":
        return text
    try:
        return resolve_cell_timeout(text, "quick")
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _limits() -> str:
    return ", ".join(
        f"{profile}: {'none' if s is None else f'{s} s'}" for profile, s in CELL_TIMEOUT_S.items()
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ..engine.config import SOURCES

    parser.add_argument(
        "--profile",
        choices=tuple(PROFILES),
        default="quick",
        help="quick: CPU, synthetic data, 64 px, minutes; full: a real dataset at 224 px on a GPU",
    )
    parser.add_argument(
        "--dataset", choices=SOURCES, help="the DATASET parameter (default: the profile's)"
    )
    parser.add_argument(
        "--data", metavar="DATA_DIR", help="the DATA_DIR parameter: the folder holding <dataset>/"
    )
    parser.add_argument(
        "--out", default="build/course", help="where the executed notebooks and HTML go"
    )
    parser.add_argument(
        "--notebooks", nargs="+", metavar="NAME", help="run only these (e.g. 00 03); default: all"
    )
    parser.add_argument(
        "-p",
        "--param",
        action="append",
        type=_parse_assignment,
        metavar="NAME=VALUE",
        help="override a notebook parameter, e.g. -p EPOCHS=20 (repeatable)",
    )
    parser.add_argument("--kernel", help="Jupyter kernel name (default: the notebooks' python3)")
    parser.add_argument(
        "--cell-timeout",
        type=_parse_cell_timeout,
        default="profile",
        metavar="SECONDS",
        help="stop a cell that runs longer than this, and fail (a stuck cell); 0 or none: no "
        f"limit; profile: the profile's ({_limits()})",
    )
    parser.add_argument(
        "--edition",
        choices=tuple(EDITIONS),
        default="instructor",
        help="instructor: notebooks/ with solutions; student: notebooks/student/, exercises to do",
    )


def run(args: argparse.Namespace) -> int:
    overrides = dict(args.param or [])
    if args.dataset:
        overrides["DATASET"] = args.dataset
    if args.data:
        overrides["DATA_DIR"] = args.data
    run_course(
        args.profile,
        args.out,
        args.notebooks,
        overrides,
        args.kernel,
        edition=args.edition,
        cell_timeout=args.cell_timeout,
    )
    return 0


__all__ = ["CourseError", "notebooks_dir", "run_course"]
