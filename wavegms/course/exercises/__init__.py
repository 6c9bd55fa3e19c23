"""Checking the course's exercises: a verdict the student reads, never an exception.

In the student edition an exercise cell starts as a stub: a value (``answer = ...``) or a
function whose missing lines are one ``...  # TODO: your code here`` (:data:`TODO`), its named
intermediates left as ``...``. The check cell below it calls one function of this package's
per-notebook modules (:mod:`.setup`, :mod:`.wavelets`, :mod:`.latents`, :mod:`.training`,
:mod:`.evaluation`, :mod:`.inference`), which computes the reference itself (for a function: on
fresh inputs it draws) and hands the comparison to :func:`check`. :func:`check` prints one
line: "not done yet" while the stub is untouched, whether the answer is right once it is filled
in, and why not when it is wrong. It never raises, so a student notebook runs top to bottom
whatever state its exercises are in.

A check's test works on a student's function with the helpers below, the one set every
notebook's checks share: :func:`call` runs it (a ``None`` result and a scaffold's ``...`` each
get their own verdict), :func:`forbid_calls` and :func:`forbidden` refuse the library's version
of what the exercise asks to write, :func:`as_tensor` and :func:`as_floats` read its result,
:func:`matches` (with :func:`which_mistake`) and :func:`close` compare it with the reference.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

CORRECT, WRONG, NOT_DONE = "correct", "not quite", "not done yet"
# What the student edition writes where a solution was (tools/authoring.py): while it is still
# in a function, the function is a stub.
TODO = "# TODO: your code here"
# The verdict's reason, after the function's name, when a student's function returned None.
RETURNED_NOTHING = "ran but returned None: add a `return` with its result."


class Wrong(Exception):
    """Raised by a test to say, in words, why an answer is wrong: :func:`check` prints the
    message as the reason (an unexpected exception is printed with its type)."""


class NotDoneYet(Exception):  # noqa: N818 - a state of the answer, not an error
    """Raised by :func:`call` when a student's function returns what still holds its
    scaffold's ``...``: :func:`check` says "not done yet"."""


def is_stub(value: Any) -> bool:  # noqa: ANN401
    """True for an answer left as the stub's ``...`` (or a stub function's ``None``), and for
    a dict, list or tuple still holding a ``...`` (e.g. ``{"stripes": (..., ...)}``)."""
    return value is None or _holds_ellipsis(value)


def _holds_ellipsis(value: Any) -> bool:  # noqa: ANN401
    if isinstance(value, Mapping):
        return any(_holds_ellipsis(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(_holds_ellipsis(v) for v in value)
    return value is Ellipsis


def unfinished(function: Any) -> bool:  # noqa: ANN401
    """True when ``function`` (a student's) still holds the student edition's ``# TODO`` line.
    False for anything else, and when its source cannot be read."""
    if not callable(function):
        return False
    try:
        source = inspect.getsource(function)
    except (OSError, TypeError):
        return False
    return TODO in source


def call(function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:  # noqa: ANN401
    """``function(*args, **kwargs)``, for a student's function: a ``None`` result raises
    :class:`Wrong` (":data:`RETURNED_NOTHING`"), a distinct verdict from a wrong value, and a
    result still holding its scaffold's ``...`` raises :class:`NotDoneYet`."""
    result = function(*args, **kwargs)
    if result is None:
        name = getattr(function, "__name__", "")
        raise Wrong(f"`{name if name.isidentifier() else 'your function'}` {RETURNED_NOTHING}")
    if _holds_ellipsis(result):
        raise NotDoneYet
    return result


def names_used(function: Any) -> set[str]:  # noqa: ANN401
    """The global and attribute names (functions, methods, modules) ``function``'s code
    refers to, the functions, lambdas and comprehensions inside it included."""
    code = getattr(function, "__code__", None)
    pending, found = [code] if code is not None else [], set()
    while pending:
        code = pending.pop()
        found.update(code.co_names)
        pending += [c for c in code.co_consts if inspect.iscode(c)]
    return found


def forbid_calls(function: Any, names: Iterable[str], instead: str) -> None:  # noqa: ANN401
    """Raise :class:`Wrong` when ``function``'s code refers to one of ``names``: an exercise
    that asks for a piece of the method rejects calling the library's version of it.
    ``instead`` says what to do, e.g. "write the four bands from a, b, c, d yourself"."""
    used = names_used(function)
    found = next((name for name in names if name in used), None)
    if found:
        raise Wrong(f"your function calls `{found}`: {instead}")


@contextmanager
def forbidden(owner: Any, attribute: str, instead: str) -> Iterator[None]:  # noqa: ANN401
    """While inside, calling ``owner.attribute`` raises :class:`Wrong` ("your function calls
    `owner`: ``instead``"), however the student's code reaches it (e.g. a loss object made
    earlier in the notebook), where :func:`forbid_calls` sees only the names it spells."""
    original = getattr(owner, attribute)
    name = getattr(owner, "__name__", attribute)

    def refuse(*_args: Any, **_kwargs: Any) -> None:  # noqa: ANN401
        raise Wrong(f"your function calls `{name}`: {instead}")

    setattr(owner, attribute, refuse)
    try:
        yield
    finally:
        setattr(owner, attribute, original)


def as_tensor(value: Any, what: str):  # noqa: ANN201, ANN401 - a torch.Tensor
    """A student's tensor answer, detached, as float32 on the CPU; :class:`Wrong` (naming it
    ``what``) when it is not a tensor."""
    import torch

    if not isinstance(value, torch.Tensor):
        raise Wrong(f"{what} should be a tensor, got {describe(value)}")
    return value.detach().float().cpu()


def as_floats(value: Any, what: str) -> list[float]:  # noqa: ANN401
    """A student's numbers (one, or a list, tuple, array or tensor of them) as a flat list of
    floats; :class:`Wrong` (naming them ``what``) when they are not numbers."""
    import torch

    try:
        tensor = torch.as_tensor(
            value.detach().cpu() if isinstance(value, torch.Tensor) else value,
            dtype=torch.float64,
        )
    except (TypeError, ValueError, RuntimeError):
        raise Wrong(
            f"{what} should be a number or a list of numbers, got {describe(value)}"
        ) from None
    return tensor.flatten().tolist()


def which_mistake(value: Any, mistakes: Mapping[str, Any], atol: float = 1e-5) -> str | None:  # noqa: ANN401
    """The first key of ``mistakes`` (a hint, e.g. "H and V are swapped") whose tensor
    ``value`` equals, or None: naming a plausible slip helps more than "largest difference"."""
    import torch

    for hint, mistake in mistakes.items():
        mistake = mistake.detach().float().cpu()
        if value.shape == mistake.shape and torch.allclose(value, mistake, atol=atol):
            return hint
    return None


def matches(
    value: Any,  # noqa: ANN401 - a torch.Tensor
    expected: Any,  # noqa: ANN401 - a torch.Tensor
    mistakes: Mapping[str, Any] | None = None,
    *,
    atol: float = 1e-5,
    rtol: float = 1e-4,
    shape_hint: str = "",
) -> bool | str:
    """True when the tensor ``value`` equals ``expected`` (see :func:`close`); else why not:
    its shape (then ``shape_hint``), the hint of one of ``mistakes`` it equals (see
    :func:`which_mistake`), or how far it is."""
    if value.shape != expected.shape:
        return f"shape {tuple(value.shape)}, expected {tuple(expected.shape)}{shape_hint}"
    hint = which_mistake(value, mistakes or {}, atol)
    return hint or close(value, expected, rtol=rtol, atol=atol)


def describe(value: Any) -> str:  # noqa: ANN401
    """``value`` in a few words on one line: a tensor's shape, a list's length, a short repr."""
    shape = getattr(value, "shape", None)
    if shape is not None and len(shape) > 0:
        return f"a {type(value).__name__} of shape {tuple(shape)}"
    if isinstance(value, list | tuple) and len(value) > 3:
        return f"a {type(value).__name__} of {len(value)} items"
    if isinstance(value, list | tuple):
        return f"a {type(value).__name__} of {', '.join(describe(v) for v in value)}"
    text = " ".join(repr(value).split())
    return text if len(text) <= 60 else text[:57] + "..."


def _passed(verdict: Any) -> bool:  # noqa: ANN401
    # True, or a numpy / torch boolean holding one value that is true (e.g. `np.isclose(a, b)`,
    # `torch.tensor([3.0]) == 3`); several booleans are no verdict.
    if verdict is True:
        return True
    if "bool" not in str(getattr(verdict, "dtype", "")):
        return False
    try:
        return verdict.item() is True
    except (ValueError, RuntimeError):  # more than one value
        return False


def _reason(error: Exception) -> str:
    if isinstance(error, Wrong):
        return str(error)
    text = f"{type(error).__name__}: {error}"
    if "ellipsis" in text.lower():  # e.g. `torch.cat([ll, ...])` with `ll = ...` left
        return f"a `...` is still in your code ({text})"
    return text


def check(
    name: str,
    answer: Any,  # noqa: ANN401
    test: Callable[[Any], bool | str | None],
    *,
    success: str | Callable[[Any], str] = "",
) -> str:
    """Print one line, the verdict on ``answer``, and return it: ``"correct"``,
    ``"not quite"`` or ``"not done yet"``.

    Args:
        name: what is checked, e.g. ``"Exercise 2"``.
        answer: the student's value or function (``...``, ``None`` or a value holding a
            ``...``: not done yet; a function still holding the ``# TODO`` line and failing the
            test: not done yet either).
        test: ``test(answer)`` returns True (or a true numpy / torch boolean) when right; False
            or a sentence saying what is wrong otherwise. A :class:`Wrong` it raises gives the
            reason, a :class:`NotDoneYet` (from :func:`call`) says "not done yet"; any other
            exception is reported with its type.
        success: a sentence printed after a right answer (what it shows), or a function of
            the answer making one (called only then, and never allowed to spoil the verdict).
    """
    stub = f"{name}: {NOT_DONE}: replace the `...` in the cell above, then run both cells."
    if is_stub(answer):
        print(stub)
        return NOT_DONE
    try:
        verdict = test(answer)
    except NotDoneYet:  # the student's function returned its scaffold's `...`
        print(stub)
        return NOT_DONE
    except Exception as error:  # noqa: BLE001 - the student's code may fail in any way
        verdict = _reason(error)
    if _passed(verdict):
        try:
            note = success(answer) if callable(success) else success
        except Exception:  # noqa: BLE001 - the answer is right: a failing remark must not hide it
            note = ""
        print(f"{name}: {CORRECT}." + (f" {note}" if note else ""))
        return CORRECT
    if unfinished(answer):
        print(
            f"{name}: {NOT_DONE}: replace the `...  {TODO}` in the cell above with your code, "
            "then run both cells."
        )
        return NOT_DONE
    reason = verdict if isinstance(verdict, str) and verdict else "the answer does not match."
    print(f"{name}: {WRONG}: {' '.join(reason.split())}")  # one line, whatever the reason holds
    return WRONG


def close(value: Any, expected: Any, *, rtol: float = 1e-4, atol: float = 1e-6) -> bool | str:  # noqa: ANN401
    """True when ``value`` equals ``expected`` (numbers, numpy arrays, tensors and lists of
    them within a tolerance, dicts key by key); else a sentence saying what differs."""
    import torch

    if isinstance(expected, dict):
        if not isinstance(value, dict) or set(value) != set(expected):
            return f"expected a dict with keys {sorted(expected)}, got {describe(value)}"
        for key in expected:
            verdict = close(value[key], expected[key], rtol=rtol, atol=atol)
            if verdict is not True:
                return f"{key}: {verdict}"
        return True
    try:
        value_t, expected_t = _tensor(value), _tensor(expected)
    except (TypeError, ValueError, RuntimeError) as error:
        return f"expected numbers like {_describe(expected)}, got {describe(value)} ({error})"
    if value_t.shape != expected_t.shape:
        return f"shape {tuple(value_t.shape)}, expected {tuple(expected_t.shape)}"
    value_t, expected_t = value_t.double().cpu(), expected_t.double().cpu()
    if torch.allclose(value_t, expected_t, rtol=rtol, atol=atol):
        return True
    if value_t.numel() == 1:
        return f"{value_t.item():.6g}, expected {expected_t.item():.6g}"
    return f"largest difference {(value_t - expected_t).abs().max().item():.3g}"


def _tensor(value: Any):  # noqa: ANN202, ANN401 - a torch.Tensor
    """``value`` as one tensor: a tensor, a number, a numpy array, or a list of these."""
    import torch

    if isinstance(value, torch.Tensor):
        return value.detach()
    if isinstance(value, list | tuple) and value and isinstance(value[0], torch.Tensor):
        return torch.stack([v.detach() for v in value])
    return torch.as_tensor(value)


def _describe(expected: Any) -> str:  # noqa: ANN401
    shape = tuple(getattr(_tensor(expected), "shape", ()))
    return f"a tensor of shape {shape}" if shape else "one number"


__all__ = [
    "CORRECT",
    "NOT_DONE",
    "RETURNED_NOTHING",
    "TODO",
    "WRONG",
    "NotDoneYet",
    "Wrong",
    "as_floats",
    "as_tensor",
    "call",
    "check",
    "close",
    "describe",
    "forbid_calls",
    "forbidden",
    "is_stub",
    "matches",
    "names_used",
    "unfinished",
    "which_mistake",
]
