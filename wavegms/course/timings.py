"""How long each notebook of a course run took, kept beside the executed notebooks.

``wavegms course`` records every notebook it finished in ``<out>/course_times.json``; the
course book (``wavegms book``) shows them as the measured times of the machine that ran it::

    {"notebooks": {"03_lmm_training.ipynb": {"seconds": 51.2, "profile": "quick",
                   "edition": "instructor", "finished": "2025-01-01T12:00:00+00:00",
                   "machine": {"cpu": "AMD EPYC ...", "cores": 2, "gpu": null}}}}

A run of some notebooks updates their entries and keeps the others. Only the standard library
is imported here, and torch only to name a GPU.
"""

from __future__ import annotations

import datetime
import functools
import os
import platform
from pathlib import Path
from typing import Any

from ..utils.atomic import atomic_write_json
from ..utils.jsonfile import read_json_object

TIMES_FILE = "course_times.json"


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


def record_time(
    course_dir: str | os.PathLike, notebook: str, seconds: float, *, profile: str, edition: str
) -> None:
    """Add or replace ``notebook``'s entry in ``course_dir/course_times.json`` (atomically); a
    damaged file is started again rather than stopping the course."""
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
    atomic_write_json(Path(course_dir) / TIMES_FILE, {"notebooks": notebooks})


__all__ = ["TIMES_FILE", "machine", "read_times", "record_time"]
