"""Executing one course notebook with papermill: the kernel it runs in, the progress line it
shows, and what its failure says (the notebook and cell, the error, where the executed copy is).
:mod:`.runner` runs the whole course with it."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

# Per-cell time limit of `wavegms course`: a quick cell that runs this long is stuck, and a
# clear error naming it beats a silent CI timeout. Full runs train for hours: no limit.
CELL_TIMEOUT_S = {"quick": 900, "full": None}


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


def failure(error: Exception, executed: Path) -> dict[str, Any]:
    """Where and how a notebook failed: from papermill's error, else from the saved notebook
    (a cell time-out or a dead kernel leave their cell marked "running" in it)."""
    if hasattr(error, "cell_index"):  # PapermillExecutionError
        return {
            "cell": error.cell_index,
            "count": error.exec_count,
            "source": error.source or "",
            "what": f"{error.ename}: {error.evalue}",
        }
    import nbformat

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
        "cell": cell,
        "count": count,
        "source": source,
        "what": f"{type(error).__name__}: {what}",
    }


def failure_message(name: str, failure: dict[str, Any], executed: Path) -> str:
    source = failure["source"].strip().splitlines()
    first_line = source[0] if source else ""
    what = " ".join(failure["what"].split()).rstrip(".")
    if len(what) > 500:
        what = what[:500] + " ..."
    return (
        f"notebook {name} failed in cell {failure['cell']} (In [{failure['count']}]): {what}.\n"
        f"  The cell starts with: {first_line!r}.\n"
        f"  The executed notebook, with the full traceback, is {executed} "
        f"(and {executed.with_suffix('.html').name})."
    )


def execute(
    path: Path,
    output: Path,
    parameters: dict[str, Any],
    kernel: str | None,
    profile: str,
    label: str,
) -> Exception | None:
    """Execute the notebook ``path`` into ``output`` with papermill; the error if a cell
    failed, timed out or killed its kernel (the notebook is saved up to there), else None."""
    import papermill
    from nbclient.exceptions import CellTimeoutError, DeadKernelError
    from papermill.exceptions import PapermillExecutionError

    try:
        papermill.execute_notebook(
            str(path),
            str(output),
            parameters=parameters,
            kernel_name=kernel,
            progress_bar=progress(label),
            log_output=False,
            execution_timeout=CELL_TIMEOUT_S[profile],
            kernel_manager_class=kernel_manager_class(),
            # A finished notebook leaves nothing in its kernel, and a graceful exit of a Python
            # holding torch takes 1.5-3 s: stop it at once (its process group).
            shutdown_kernel="immediate",
        )
    except (PapermillExecutionError, CellTimeoutError, DeadKernelError) as error:
        return error
    return None


def progress(label: str) -> dict[str, Any]:
    """papermill's progress bar (tqdm) as one line per notebook: cells done / total, elapsed.

    A long cell (training) keeps the line where it is: run time shows what is going on."""
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
