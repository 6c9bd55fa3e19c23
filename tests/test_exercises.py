"""The exercise checks of the course: a verdict for every state of an answer, never a crash."""

from __future__ import annotations

import torch

from wavegms.course.exercises import CORRECT, NOT_DONE, WRONG, check, close


def test_a_stub_is_not_done_yet_and_nothing_else_runs(capsys):
    def never(_answer):
        raise AssertionError("the test must not run on a stub")

    for stub in (..., None):  # `x = ...`, or a stub function's implicit None
        assert check("Exercise 1", stub, never, success=never) == NOT_DONE
    assert capsys.readouterr().out.count("Exercise 1: not done yet") == 2


def test_right_and_wrong_answers_say_so_with_a_reason(capsys):
    assert check("Exercise 2", 64, lambda a: a == 64, success=lambda a: f"{a} px") == CORRECT
    assert check("Exercise 2", 60, lambda a: a == 64 or f"{a} is not divisible by 8") == WRONG
    printed = capsys.readouterr().out.splitlines()
    assert printed == [
        "Exercise 2: correct. 64 px",
        "Exercise 2: not quite: 60 is not divisible by 8",
    ]


def test_an_answer_that_breaks_the_test_is_wrong_not_a_crash(capsys):
    assert check("Exercise 3", {"latent": 1.0}, lambda a: a["total"] > 0) == WRONG
    assert "KeyError: 'total'" in capsys.readouterr().out


def test_close_compares_numbers_tensors_and_dicts():
    reference = {"total": torch.tensor(1.5), "mask": torch.tensor(0.5)}
    assert close({"total": torch.tensor(1.5 + 1e-7), "mask": 0.5}, reference) is True
    assert close({"total": 1.6, "mask": 0.5}, reference) == "total: 1.6, expected 1.5"
    assert "keys" in close({"total": 1.5}, reference)
    assert close(torch.zeros(2, 3), torch.zeros(3, 2)) == "shape (2, 3), expected (3, 2)"
    assert close(torch.ones(4), torch.zeros(4)).startswith("largest difference 1")
