"""Worker processes that never outlive the process that started them.

A parent killed hard (kill -9, an out-of-memory kill, a closed Colab tab) runs no cleanup, and
``ProcessPoolExecutor`` workers would go on waiting for work forever, with the resource
tracker they keep alive. Each worker therefore watches its parent from its first moment: on
Linux the kernel sends it SIGKILL when the parent dies (``prctl(PR_SET_PDEATHSIG)``), and on
every POSIX system a daemon thread notices the change of parent within a second and exits.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import multiprocessing as mp
import os
import signal
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor

_PR_SET_PDEATHSIG = 1
POLL_SECONDS = 0.5


def _kernel_kills_me_with_parent() -> None:
    """Linux only: ask the kernel to SIGKILL this process when its parent dies."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        pass  # the watchdog thread below covers this case


def _watch(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(POLL_SECONDS)
    os._exit(1)  # no cleanup: the parent that would collect our results is gone


def exit_with_parent(parent: int) -> None:
    """Worker initializer: exit as soon as process ``parent`` is gone."""
    _kernel_kills_me_with_parent()
    if os.getppid() != parent:  # the parent died before we got here
        os._exit(1)
    if os.name == "posix":  # Windows never changes a process's recorded parent
        threading.Thread(target=_watch, args=(parent,), daemon=True, name="parent-watch").start()


def process_pool(workers: int) -> ProcessPoolExecutor:
    """A pool of ``workers`` fresh interpreters ("spawn") that exit when this process dies.

    "spawn": forking a process that already runs torch threads (a notebook that imported
    wavegms) can deadlock; fresh interpreters only import what the task needs.
    """
    return ProcessPoolExecutor(
        max_workers=workers,
        mp_context=mp.get_context("spawn"),
        initializer=exit_with_parent,
        initargs=(os.getpid(),),
    )
