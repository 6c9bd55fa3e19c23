"""Running a course check in a test: the one line it prints."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def verdict_of(capsys: Any, check: Callable[..., Any], *args: Any) -> str:  # noqa: ANN401
    """The verdict line that ``check(*args)`` prints; it must print exactly one line and
    return None, so that a notebook's check cell shows its verdict once."""
    assert check(*args) is None, "a check returns nothing: the cell does not echo it"
    (line,) = capsys.readouterr().out.splitlines()
    return line
