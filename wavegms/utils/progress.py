"""Progress bars only where they redraw in place.

A text bar (tqdm) redraws itself with carriage returns and, when two are shown at once, cursor
moves (``ESC[A``). On a terminal that is a live bar; in a file or a pipe (``wavegms train ... >
log.txt``, a job scheduler's log, ``| tee``) it is a pile of half-drawn bars and escape codes.
So a bar is shown only on a terminal or as a Jupyter widget, and a caller prints plain lines
instead where it says no.
"""

from __future__ import annotations

import sys
from typing import Any

from tqdm.auto import tqdm


def show_bars(requested: bool, bar: type = tqdm) -> bool:
    """``requested``, unless a bar of class ``bar`` (tqdm.auto's by default) would not redraw
    in place: a widget bar (``tqdm.notebook``, which tqdm.auto picks in a Jupyter kernel with
    ipywidgets) does; a text bar does when stdout and stderr (where it draws) are terminals."""
    if not requested:
        return False
    if any(cls.__module__ == "tqdm.notebook" for cls in bar.__mro__):
        return True
    return _terminal(sys.stdout) and _terminal(sys.stderr)


def _terminal(stream: Any) -> bool:  # noqa: ANN401 - sys.stdout may be None or any object
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no stream, or a closed one
        return False


__all__ = ["show_bars"]
