"""Checking the course's exercises: a verdict the student reads, never an exception.

In the student edition an exercise cell starts as a stub (``answer = ...``); the check cell
below it calls :func:`check`, which says "not done yet" while the stub is untouched, whether
the answer is right once it is filled in, and why not when it is wrong. It never raises, so
a student notebook runs top to bottom whatever state its exercises are in.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

CORRECT, WRONG, NOT_DONE = "correct", "not quite", "not done yet"


def is_stub(value: Any) -> bool:  # noqa: ANN401
    """True for an answer left as the stub's ``...`` (or a stub function's ``None``)."""
    return value is Ellipsis or value is None


def check(
    name: str,
    answer: Any,  # noqa: ANN401
    test: Callable[[Any], bool | str | None],
    *,
    success: str | Callable[[Any], str] = "",
) -> str:
    """Print and return the verdict on ``answer``: ``"correct"``, ``"not quite"`` or
    ``"not done yet"``.

    Args:
        name: what is checked, e.g. ``"Exercise 2"``.
        answer: the student's value (``...`` or ``None``: not done yet).
        test: ``test(answer)`` returns True when right (numpy's and torch's one-value
            booleans too: ``np.float64(3.0) == 3`` is ``np.True_``); False or a sentence
            saying what is wrong otherwise. An exception it raises is reported as the reason.
        success: a sentence printed after a right answer (what it shows), or a function of
            the answer making one (called only then: the stub's ``...`` never reaches it). If
            that function fails on an unusual right answer, the answer is still correct.
    """
    if is_stub(answer):
        print(f"{name}: {NOT_DONE}: replace the `...` in the cell above, then run both cells.")
        return NOT_DONE
    try:
        verdict = _as_bool(test(answer))
    except Exception as error:  # noqa: BLE001 - the student's code may fail in any way
        verdict = f"{type(error).__name__}: {error}"
    if verdict is True:
        try:
            note = success(answer) if callable(success) else success
        except Exception:  # noqa: BLE001 - e.g. f"{answer:.1f}" on a right Fraction
            note = ""
        print(f"{name}: {CORRECT}." + (f" {note}" if note else ""))
        return CORRECT
    reason = verdict if isinstance(verdict, str) and verdict else "the answer does not match."
    print(f"{name}: {WRONG}: {reason}")
    return WRONG


def _as_bool(verdict: Any) -> Any:  # noqa: ANN401
    """``verdict`` as a Python bool when it holds one boolean (``np.True_``, ``tensor(True)``,
    a one-element boolean array), else as it is (a reason, or something that is no verdict)."""
    if isinstance(verdict, (bool, str)) or verdict is None:
        return verdict
    if "bool" in str(getattr(verdict, "dtype", "")):  # numpy "bool", torch "torch.bool"
        try:
            return bool(verdict.item())
        except (ValueError, RuntimeError):  # several values: not a verdict
            return verdict
    return verdict


def close(value: Any, expected: Any, *, rtol: float = 1e-4, atol: float = 1e-6) -> bool | str:  # noqa: ANN401
    """True when ``value`` equals ``expected`` (numbers and tensors within a tolerance, dicts
    key by key); else a sentence saying what differs."""
    import torch

    if isinstance(expected, dict):
        if not isinstance(value, dict) or set(value) != set(expected):
            return f"expected a dict with keys {sorted(expected)}, got {value!r:.80}"
        for key in expected:
            verdict = close(value[key], expected[key], rtol=rtol, atol=atol)
            if verdict is not True:
                return f"{key}: {verdict}"
        return True
    value_t = torch.as_tensor(value.detach() if isinstance(value, torch.Tensor) else value)
    expected_t = torch.as_tensor(
        expected.detach() if isinstance(expected, torch.Tensor) else expected
    )
    if value_t.shape != expected_t.shape:
        return f"shape {tuple(value_t.shape)}, expected {tuple(expected_t.shape)}"
    value_t, expected_t = value_t.double().cpu(), expected_t.double().cpu()
    if torch.allclose(value_t, expected_t, rtol=rtol, atol=atol):
        return True
    if value_t.numel() == 1:
        return f"{value_t.item():.6g}, expected {expected_t.item():.6g}"
    return f"largest difference {(value_t - expected_t).abs().max().item():.3g}"


__all__ = ["CORRECT", "NOT_DONE", "WRONG", "check", "close", "is_stub"]
