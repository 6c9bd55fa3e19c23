"""Reading the one line an exercise check prints: what the student sees."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

VERDICT = re.compile(r"^(Exercise \d+): (correct|not quite|not done yet)[.:]? ?(.*)$")


def verdict(capsys: Any, run: Callable[..., None], *args: Any) -> tuple[str, str]:  # noqa: ANN401
    """``run(*args)`` (a check), which must print exactly one verdict line and return nothing:
    ``(verdict, the rest of the line)``, e.g. ``("not quite", "H and V are swapped ...")``."""
    capsys.readouterr()
    assert run(*args) is None, "a check returns nothing: the notebook cell must not echo it"
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1, lines
    match = VERDICT.match(lines[0])
    assert match, lines[0]
    return match[2], match[3]


def assert_rejects(capsys: Any, run: Callable[..., None], *args: Any, reason: str) -> None:  # noqa: ANN401
    """``run(*args)`` says "not quite", and its line names ``reason``."""
    said, text = verdict(capsys, run, *args)
    assert (said, reason in text) == ("not quite", True), f"{said}: {text}"


def verdict_of(capsys: Any, check: Callable[..., Any], *args: Any) -> str:  # noqa: ANN401
    """The verdict line that ``check(*args)`` prints; it must print exactly one line and
    return None, so that a notebook's check cell shows its verdict once."""
    assert check(*args) is None, "a check returns nothing: the cell does not echo it"
    (line,) = capsys.readouterr().out.splitlines()
    return line
