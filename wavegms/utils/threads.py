"""How many CPU threads torch computes with, and how many loader processes run beside it.

torch starts one intra-op thread per core and each parallel operation waits for all of them. On
a machine where something else runs (a browser beside a notebook, a shared server, a busy Colab
VM) one of those threads is always late, and a training step measured at 1.5 s with one thread
took 8.3 s with two on 2 busy cores. So the threads are chosen from the cores this process may
use (``os.sched_getaffinity``, a cgroup quota) less those other processes keep busy right now
(sampled from ``/proc/stat``, else the load average), and loader workers, which would compete
for the same cores, only run beside a GPU.

The choice can be forced with a ``threads`` argument (``--threads``, the notebooks' ``THREADS``)
or the environment variable ``WAVEGMS_THREADS``; ``OMP_NUM_THREADS``, when set, is respected.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

THREADS_ENV = "WAVEGMS_THREADS"
SAMPLE_S = 0.2  # how long the cores are watched: long enough to see a busy process
REUSE_S = 30.0  # a choice is reused for this long (predict in a loop must not sample each call)
MAX_GPU_WORKERS = 4
FORCED_BY = {"threads": "--threads / THREADS"}  # how a user sets the `threads` argument
_own_since = [time.monotonic(), time.process_time()]  # to tell this process's own load apart


@dataclass(frozen=True)
class ThreadChoice:
    """What :func:`choose_threads` decided, and why.

    Attributes:
        threads: torch's intra-op threads, at least 1.
        cores: the cores this process may use.
        busy: how many of them other processes kept busy while sampled (None: not measured).
        source: ``"auto"``, ``"threads"`` (an argument), ``WAVEGMS_THREADS`` or ``OMP_NUM_THREADS``.
    """

    threads: int
    cores: int
    busy: float | None
    source: str

    def line(self) -> str:
        """One line saying what was chosen, why, and how to change it."""
        chosen = f"CPU threads: {self.threads} thread{'s' if self.threads != 1 else ''}"
        if self.source != "auto":
            return f"{chosen} (set by {FORCED_BY.get(self.source, self.source)})"
        busy = ""
        if self.busy is not None:
            busy = f", {self.busy:.1f} busy with other work" if self.busy >= 0.05 else ", idle"
        cores = f"{self.cores} core{'s' if self.cores != 1 else ''}"
        return f"{chosen} ({cores}{busy}; to change: --threads N or {THREADS_ENV}=N)"


def usable_cores() -> int:
    """The cores this process may run on: its affinity, capped by a cgroup CPU quota."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        cores = os.cpu_count() or 1
    try:  # containers (e.g. docker --cpus 2) limit time, not cores
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()
        if quota != "max":
            cores = min(cores, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return max(1, cores)


def loader_workers(device_type: str) -> int:
    """Loader processes beside a computation on ``device_type``: none on a CPU, where items
    come from memory and a worker would only take cores from torch; beside a GPU the cores
    the feeding process does not need, up to :data:`MAX_GPU_WORKERS`."""
    if device_type == "cpu":
        return 0
    return max(0, min(MAX_GPU_WORKERS, usable_cores() - 1))


def busy_cores(seconds: float = SAMPLE_S) -> float | None:
    """How many of this process's cores *other* processes keep busy, sampled over
    ``seconds``; this process's own CPU time in the window is left out. None where it cannot
    be measured (no ``/proc/stat``): then the 1-minute load average stands in, less this
    process's own average CPU use since the previous call (or since this module's import)."""
    try:
        cpus = sorted(os.sched_getaffinity(0))
    except AttributeError:
        cpus = None
    before, own_before = _cpu_times(cpus), time.process_time()
    if before is None:
        return _load_average()
    time.sleep(seconds)
    after, own = _cpu_times(cpus), time.process_time() - own_before
    if after is None:
        return _load_average()
    (busy0, total0), (busy1, total1) = before, after
    if total1 <= total0:
        return None
    share = (busy1 - busy0) / (total1 - total0)  # of all the watched cores
    watched = len(cpus) if cpus else (os.cpu_count() or 1)
    return max(0.0, share * watched - own / seconds)


def choose_threads(
    threads: int | None = None, cores: int | None = None, busy: float | None = None
) -> ThreadChoice:
    """The threads to compute with: ``threads`` if given, else ``WAVEGMS_THREADS``, else
    ``OMP_NUM_THREADS``, else the usable cores less the busy ones (rounded, at least 1).

    ``cores`` and ``busy`` are measured when None (:func:`usable_cores`, :func:`busy_cores`).

    Raises:
        ValueError: a forced count below 1 or not a whole number (names where it came from).
    """
    cores = usable_cores() if cores is None else cores
    for source, value in (
        ("threads", threads),
        (THREADS_ENV, os.environ.get(THREADS_ENV)),
        ("OMP_NUM_THREADS", os.environ.get("OMP_NUM_THREADS")),
    ):
        if value is None or value == "":
            continue
        try:
            forced = int(value)
        except ValueError:
            forced = 0
        if forced < 1:
            raise ValueError(
                f"Invalid {source}={value!r}: must be a whole number of CPU threads, at least 1."
            )
        return ThreadChoice(forced, cores, None, source)
    if busy is None:
        busy = busy_cores()
    free = cores - (busy or 0.0)
    return ThreadChoice(max(1, min(cores, math.floor(free + 0.5))), cores, busy, "auto")


_recent: dict[tuple, tuple[float, ThreadChoice]] = {}  # what decided it -> (when, choice)
_announced: list[str] = []


def configure_threads(
    threads: int | None = None, say: Callable[[str], None] | None = print
) -> ThreadChoice:
    """Choose the threads (:func:`choose_threads`), give torch that many, and tell ``say`` the
    choice (None: nobody) when it differs from the last one told in this process. A choice
    made in the last :data:`REUSE_S` seconds from the same settings is reused, so calling this
    before every prediction costs nothing."""
    import torch

    key = (threads, os.environ.get(THREADS_ENV), os.environ.get("OMP_NUM_THREADS"))
    now = time.monotonic()
    if key in _recent and now - _recent[key][0] < REUSE_S:
        choice = _recent[key][1]
    else:
        choice = choose_threads(threads)
        _recent.clear()
        _recent[key] = (now, choice)
    torch.set_num_threads(choice.threads)
    if say is not None and choice.line() not in _announced[-1:]:
        _announced.append(choice.line())
        say(choice.line())
    return choice


def _cpu_times(cpus: list[int] | None) -> tuple[int, int] | None:
    """(busy, total) jiffies of ``cpus`` (all when None) from /proc/stat; None without it."""
    try:
        lines = Path("/proc/stat").read_text().splitlines()
    except OSError:
        return None
    wanted = {f"cpu{i}" for i in cpus} if cpus else {"cpu"}
    busy = total = 0
    for line in lines:
        name, *fields = line.split()
        if name not in wanted:
            continue
        values = [int(v) for v in fields[:8]]  # user nice system idle iowait irq softirq steal
        idle = values[3] + values[4]
        total += sum(values)
        busy += sum(values) - idle
    return (busy, total) if total else None


def _load_average() -> float | None:
    """The 1-minute load average less this process's own share of it (None on Windows)."""
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):
        return None
    now = [time.monotonic(), time.process_time()]
    wall, cpu = now[0] - _own_since[0], now[1] - _own_since[1]
    own = cpu / wall if wall >= 1.0 else 0.0  # a training loop counts its own threads
    _own_since[:] = now  # since the last call: an idle hour before must not dilute an epoch
    return max(0.0, load - own)


__all__ = [
    "THREADS_ENV",
    "ThreadChoice",
    "busy_cores",
    "choose_threads",
    "configure_threads",
    "loader_workers",
    "usable_cores",
]
