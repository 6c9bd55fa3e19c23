"""Judging a function the student wrote: run it on inputs the check draws, then compare.

A student's exercise function starts as a scaffold whose named intermediates are ``...``
(``latent = ...``) and that ends with a ``return``; untouched, it returns ``...``: "not done
yet". A function that ran but returned nothing gets its own verdict, which says to add the
``return``; one that raises is wrong, with the error as the reason. :func:`verdict` prints one
line through :func:`~wavegms.course.exercises.check` and returns nothing, so that a check cell
does not echo it a second time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from . import check, is_stub

RETURNED_NOTHING = "your function returned None: add a `return` at its end."


class Unfinished(Exception):  # noqa: N818 - a state of the answer, not an error
    """The answer still holds a ``...`` of its scaffold."""


class ReturnedNothing(Exception):  # noqa: N818
    """The student's function ran to its end without a ``return``."""


class CalledTheLibrary(Exception):  # noqa: N818
    """The student's function called what the exercise asks to write."""


def has_stub(value: Any) -> bool:  # noqa: ANN401
    """True when ``value`` is ``...`` or holds one (in a dict, list or tuple)."""
    if value is Ellipsis:
        return True
    if isinstance(value, Mapping):
        return any(has_stub(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(has_stub(v) for v in value)
    return False


def returned(value: Any) -> Any:  # noqa: ANN401
    """``value``, a student's function's result, once it is known to be finished: raises
    :class:`ReturnedNothing` for ``None`` and :class:`Unfinished` for a scaffold's ``...``."""
    if value is None:
        raise ReturnedNothing
    if has_stub(value):
        raise Unfinished
    return value


def verdict(
    name: str,
    answer: Any,  # noqa: ANN401
    test: Callable[[Any], bool | str],
    *,
    success: str | Callable[[Any], str] = "",
) -> None:
    """Print the one-line verdict on ``answer`` (a value, or the student's function).

    ``test(answer)`` returns True or a reason, as for :func:`check`; it may call the
    student's function through :func:`returned`, whose exceptions become "not done yet" and
    the "returned None" verdict. Returns None: a check cell shows its verdict once.
    """
    if is_stub(answer) or has_stub(answer):
        check(name, ..., _never)
        return
    try:
        outcome = test(answer)
    except Unfinished:
        check(name, ..., _never)
        return
    except ReturnedNothing:
        outcome = RETURNED_NOTHING
    except CalledTheLibrary as called:
        outcome = str(called)
    except Exception as error:  # noqa: BLE001 - the student's code may fail in any way
        outcome = f"{type(error).__name__}: {error}"
    check(name, answer, lambda _answer: outcome, success=success)


def _never(_answer: Any) -> bool:  # noqa: ANN401
    raise AssertionError("a stub is never tested")


@contextmanager
def forbidden(owner: object, attribute: str, message: str) -> Iterator[None]:
    """While inside, calling ``owner.attribute`` raises :class:`CalledTheLibrary` with
    ``message`` (e.g. the library's loss, in the exercise that writes the loss)."""
    original = getattr(owner, attribute)

    def refuse(*_args: Any, **_kwargs: Any) -> None:  # noqa: ANN401
        raise CalledTheLibrary(message)

    setattr(owner, attribute, refuse)
    try:
        yield
    finally:
        setattr(owner, attribute, original)


def names_used(function: Callable[..., Any]) -> set[str]:
    """The global and attribute names ``function``'s code refers to, nested code included
    (how a check sees that an answer calls what it was asked to write)."""
    names, codes = set(), [getattr(function, "__code__", None)]
    while codes:
        code = codes.pop()
        if code is None:
            continue
        names.update(code.co_names)
        codes.extend(c for c in code.co_consts if hasattr(c, "co_names"))
    return names


def as_floats(value: Any, name: str) -> list[float]:  # noqa: ANN401
    """``value`` (a list, tuple, array or tensor of numbers) as a list of floats; raises
    ``ValueError`` naming ``name`` when it is not one."""
    import torch

    try:
        tensor = torch.as_tensor(
            value.detach().cpu() if isinstance(value, torch.Tensor) else value,
            dtype=torch.float64,
        )
    except (TypeError, ValueError, RuntimeError):
        raise ValueError(f"{name} should be a list of numbers, got {value!r:.80}") from None
    return tensor.flatten().tolist()


__all__ = [
    "RETURNED_NOTHING",
    "CalledTheLibrary",
    "ReturnedNothing",
    "Unfinished",
    "as_floats",
    "forbidden",
    "has_stub",
    "names_used",
    "returned",
    "verdict",
]
