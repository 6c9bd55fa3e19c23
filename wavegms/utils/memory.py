"""Running out of GPU memory: one line that says what to change, with the memory freed first.

PyTorch's message is a paragraph on allocator settings. :func:`explain_out_of_memory` replaces
it with one line naming the settings that lower the need (a smaller batch, gradient
checkpointing, mixed precision), and frees what the failed work held before raising: a
notebook keeps the last error, and an error whose traceback still held the batch and its
activations would make the retry with a smaller batch run out of memory as well.
"""

from __future__ import annotations

import gc
import re
from collections.abc import Callable, Sequence
from typing import TypeVar

import torch

# torch.OutOfMemoryError since PyTorch 2.5 (any device); before, CUDA's own class (the same one
# since 2.5). A RuntimeError either way, so `wavegms` prints it as one line (wavegms.cli).
OutOfMemoryError: type[RuntimeError] = getattr(
    torch, "OutOfMemoryError", torch.cuda.OutOfMemoryError
)

T = TypeVar("T")


def explain_out_of_memory(
    run: Callable[[], T], device: torch.device, doing: str, fixes: Sequence[str]
) -> T:
    """``run()``; if it runs out of memory, raise instead an :data:`OutOfMemoryError` of one
    line: out of memory on ``device`` (and how much it tried to allocate) while ``doing``
    (e.g. ``"training at batch size 12"``), then ``fixes``, the changes that would help.

    The new error refers to nothing ``run`` held: the original error and its traceback (the
    frames of ``run``, with their tensors) are dropped, garbage is collected and CUDA's cache
    emptied before it is raised. So keep what ``run`` allocates inside ``run``.
    """
    try:
        return run()
    except OutOfMemoryError as error:
        detail = _allocation(str(error))
    # Outside the handler: the original error and every frame of `run` are gone.
    release_memory(device)
    advice = ", ".join(fixes[:-1]) + (", or " if len(fixes) > 1 else "") + fixes[-1]
    raise OutOfMemoryError(
        f"Out of memory on {device}{detail} {doing}: {advice}. The memory it held is free "
        "again: run it again after the change."
    ) from None


def release_memory(device: torch.device) -> None:
    """Free what nothing refers to any more: Python's garbage (tensors in reference cycles),
    then, on CUDA, the cached blocks PyTorch keeps for reuse (so other processes and
    ``nvidia-smi`` see the memory free)."""
    gc.collect()
    if device.type == "cuda" and torch.cuda.is_initialized():
        torch.cuda.empty_cache()


def _allocation(message: str) -> str:
    """`` (tried to allocate 2.00 GiB on a 14.75 GiB GPU)`` from PyTorch's CUDA message, or
    ``""``."""
    tried = re.search(r"Tried to allocate ([\d.]+ \w+)", message)
    total = re.search(r"total capacity of ([\d.]+ \w+)", message)
    if tried is None:
        return ""
    return f" (tried to allocate {tried[1]}" + (f" on a {total[1]} GPU)" if total else ")")


__all__ = ["OutOfMemoryError", "explain_out_of_memory", "release_memory"]
