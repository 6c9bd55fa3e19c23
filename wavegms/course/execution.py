"""Executing one course notebook with papermill: the kernel it runs in, its time limit per
cell, the progress line it shows, and what its failure says (the notebook and cell, the error,
where the executed copy is). :mod:`.runner` runs the whole course with it."""

from __future__ import annotations

import contextlib
import logging
import math
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..utils.progress import show_bars

# The time a cell may run in `wavegms course` unless --cell-timeout says otherwise (seconds;
# None: no limit). It is there to stop a stuck cell, never a slow healthy one: a whole quick
# notebook takes under a minute alone on a 2-core CPU (03, the longest, 48-49 s: README), so
# 1800 s per cell leaves a loaded or slow machine ample room; the full profile's training cell
# runs for as long as 300 epochs take (an estimated 35-60 minutes on a T4, 2.4 hours in fp32:
# docs/performance.md): no limit.
CELL_TIMEOUT_S: dict[str, int | None] = {"quick": 1800, "full": None}
NO_LIMIT = ("0", "none")  # what --cell-timeout takes for "no limit"


def check_kernel(kernel: str | None) -> None:
    """``ValueError`` naming the installed kernels when ``kernel`` is not one of them."""
    if kernel is None:
        return
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    specs = KernelSpecManager()
    try:
        specs.get_kernel_spec(kernel)
    except NoSuchKernel:
        installed = ", ".join(sorted(specs.find_kernel_specs())) or "none"
        raise ValueError(
            f"No Jupyter kernel named {kernel!r} (installed: {installed}): choose one of them "
            f"with --kernel, or install it (python -m ipykernel install --user --name {kernel})."
        ) from None


def export_html(notebook_path: Path, html_path: Path) -> None:
    import nbformat
    from nbconvert import HTMLExporter

    from ..utils.atomic import atomic_write_text

    body, _ = HTMLExporter().from_notebook_node(nbformat.read(notebook_path, as_version=4))
    atomic_write_text(html_path, body)


def resolve_cell_timeout(value: float | str | None, profile: str) -> float | None:
    """The time limit per cell, in seconds (None: no limit), for ``value``: ``"profile"`` (the
    profile's :data:`CELL_TIMEOUT_S`), a positive number of seconds (as a number or a string),
    or 0, None or ``"none"`` for no limit. ``ValueError`` names anything else."""
    if isinstance(value, str) and value.strip().lower() == "profile":
        return CELL_TIMEOUT_S[profile]
    if value is None or (isinstance(value, str) and value.strip().lower() in NO_LIMIT):
        return None
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = math.nan
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(
            f"Invalid cell timeout {value!r}: give the seconds a cell may run (e.g. 3600), "
            "or 0 or none for no limit."
        )
    return seconds or None


def failure(error: Exception, executed: Path) -> dict[str, Any]:
    """Where and how a notebook failed: from papermill's error, else from the saved notebook
    (a dead kernel leaves its cell marked "running" in it; a cell stopped at its time limit is
    the last one that started). ``kind``: ``"error"`` (the cell raised: its traceback is in
    the saved notebook), ``"timeout"`` or ``"dead kernel"`` (no traceback anywhere)."""
    if hasattr(error, "cell_index"):  # PapermillExecutionError
        return {
            "kind": "error",
            "cell": error.cell_index,
            "count": error.exec_count,
            "source": error.source or "",
            "what": f"{error.ename}: {error.evalue}",
        }
    import nbformat
    from nbclient.exceptions import CellTimeoutError

    cell, count, source = None, None, ""
    try:
        notebook = nbformat.read(executed, as_version=4)
    except (OSError, ValueError):
        notebook = None
    cells = list(enumerate(notebook.cells if notebook else []))
    marked = [
        (index, c)
        for index, c in cells
        if c.get("metadata", {}).get("papermill", {}).get("status") in ("running", "failed")
    ]
    # A timed-out cell can end up marked "completed": then it is the last one that started.
    started = [
        (index, c)
        for index, c in cells
        if c.get("metadata", {}).get("papermill", {}).get("start_time")
    ]
    for index, candidate in marked or started[-1:]:
        cell, count, source = index, candidate.get("execution_count"), candidate.source
    what = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return {
        "kind": "timeout" if isinstance(error, CellTimeoutError) else "dead kernel",
        "cell": cell,
        "count": count,
        "source": source,
        "what": f"{type(error).__name__}: {what}",
    }


def failure_message(
    name: str, failure: dict[str, Any], executed: Path, timeout: float | None = None
) -> str:
    """What ``wavegms course`` says when notebook ``name`` stopped: the cell (its number in
    the executed notebook, its execution count and first line), what happened, and what the
    executed notebook holds. ``timeout``: the limit per cell that a timed-out cell reached."""
    source = failure["source"].strip().splitlines()
    first_line = source[0] if source else ""
    cell = f"cell {failure['cell']} (In [{failure['count']}])"
    html = executed.with_suffix(".html").name
    if failure["kind"] == "timeout":
        raise_to = max(3600, 2 * math.ceil(timeout or 0))
        return (
            f"notebook {name} was stopped in {cell}: the cell ran past the time limit of "
            f"{_duration(timeout)} per cell.\n"
            f"  The cell starts with: {first_line!r}.\n"
            f"  If it is only slow, give it more time: wavegms course --cell-timeout {raise_to} "
            "(0 or none: no limit).\n"
            f"  The executed notebook, with that cell's outputs up to the stop (no traceback: the "
            f"cell did not fail), is {executed} (and {html})."
        )
    what = " ".join(failure["what"].split()).rstrip(".")
    if len(what) > 500:
        what = what[:500] + " ..."
    holds = (
        "with the traceback in that cell"
        if failure["kind"] == "error"
        else "with the outputs up to there (no traceback: the kernel process ended)"
    )
    return (
        f"notebook {name} failed in {cell}: {what}.\n"
        f"  The cell starts with: {first_line!r}.\n"
        f"  The executed notebook, {holds}, is {executed} (and {html})."
    )


def _duration(seconds: float | None) -> str:
    return "none" if seconds is None else f"{seconds:g} s"


def execute(
    path: Path,
    output: Path,
    parameters: dict[str, Any],
    kernel: str | None,
    timeout: float | None,
    label: str,
) -> Exception | None:
    """Execute the notebook ``path`` into ``output`` with papermill, each cell for at most
    ``timeout`` seconds (None: no limit); the error if a cell failed, timed out or killed its
    kernel (the notebook is saved up to there), else None."""
    import papermill
    from nbclient.exceptions import CellTimeoutError, DeadKernelError
    from papermill.exceptions import PapermillExecutionError

    try:
        with _quiet_about_stops():
            papermill.execute_notebook(
                str(path),
                str(output),
                parameters=parameters,
                kernel_name=kernel,
                progress_bar=progress(label),
                log_output=False,
                execution_timeout=timeout,
                kernel_manager_class=kernel_manager_class(),
                # A finished notebook leaves nothing in its kernel, and a graceful exit of a
                # Python holding torch takes 1.5-3 s: stop it at once (its process group).
                shutdown_kernel="immediate",
            )
    except (PapermillExecutionError, CellTimeoutError, DeadKernelError) as error:
        return error
    return None


# What nbclient logs (through papermill's logger) when it stops a cell or loses its kernel:
# printed as it happens, it lands inside the progress line, and the course's own message
# (:func:`failure_message`) says the same with the notebook and the cell.
_STOP_LINES = ("Timeout waiting for execute reply", "Kernel died while waiting")


class _DropStopLines(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(_STOP_LINES)


@contextlib.contextmanager
def _quiet_about_stops() -> Iterator[None]:
    """Leave out nbclient's log lines about a stopped cell or a dead kernel while it runs."""
    logger, drop = logging.getLogger("papermill"), _DropStopLines()
    logger.addFilter(drop)
    try:
        yield
    finally:
        logger.removeFilter(drop)


def progress(label: str) -> dict[str, Any] | bool:
    """papermill's progress bar (tqdm) as one line per notebook: cells done / total, elapsed.

    A long cell (training) keeps the line where it is: run time shows what is going on. False
    (no bar) where it would not redraw in place, e.g. when the runner's output goes to a log
    file: the runner's own line per notebook says how it went."""
    if not show_bars(True):
        return False
    return {
        "desc": f"{label:<40}",
        "bar_format": "{desc} {n_fmt}/{total_fmt} cells, {elapsed}",
        "leave": False,
        "file": sys.stdout,
        "mininterval": 1.0,
    }


def kernel_manager_class() -> str:
    """The kernels talk over IPC sockets where the platform has them (not Windows): no TCP
    port is opened, so ipykernel has nothing to warn about ("Kernel is running over TCP
    without encryption", once per notebook otherwise)."""
    if os.name == "nt":
        return "jupyter_client.manager.KernelManager"
    return "wavegms.course.execution.IPCKernelManager"


def ipc_kernel_manager():  # noqa: ANN202 - a KernelManager subclass
    from jupyter_client.manager import AsyncKernelManager

    class IPCKernelManager(AsyncKernelManager):
        """A kernel manager whose kernels use local IPC sockets instead of TCP."""

        def __init__(self, **kwargs: Any) -> None:
            import uuid

            from jupyter_core.paths import jupyter_runtime_dir

            kwargs.setdefault("transport", "ipc")
            # The sockets' path prefix: in Jupyter's runtime folder, not the current directory.
            runtime = Path(jupyter_runtime_dir())
            runtime.mkdir(parents=True, exist_ok=True)
            kwargs.setdefault("ip", str(runtime / f"wavegms-{uuid.uuid4().hex[:12]}-ipc"))
            super().__init__(**kwargs)

    return IPCKernelManager


def __getattr__(name: str) -> Any:  # noqa: ANN401
    # jupyter_client imports the kernel manager by name; build it (and import jupyter_client)
    # only then, so that `wavegms --help` stays light.
    if name == "IPCKernelManager":
        return ipc_kernel_manager()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
