"""Right answers of unusual types are right: numpy and torch scalars, and values that the
exercise's success sentence cannot format (issue 22, items 8 and 9)."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
import torch

from wavegms.course.exercises import CORRECT, WRONG, check


@pytest.mark.parametrize("answer", [np.float64(3.0), torch.tensor(3.0), torch.tensor([3.0])])
def test_numpy_and_torch_scalars_are_judged_by_their_value(answer, capsys):
    # `answer == 3` is np.True_ or tensor(True) here, not Python's True.
    assert check("Exercise 2", answer, lambda a: a == 3) == CORRECT
    assert check("Exercise 2", answer, lambda a: a == 4) == WRONG
    # Several booleans are no verdict: not quite, and no crash.
    assert check("Exercise 2", torch.full((3,), 3.0), lambda a: a == 3) == WRONG
    out = capsys.readouterr().out.splitlines()
    assert out == ["Exercise 2: correct."] + 2 * [
        "Exercise 2: not quite: the answer does not match."
    ]


def test_a_success_sentence_that_cannot_format_a_right_answer_still_says_correct(capsys):
    # Notebook 00's exercise 2: a ratio, checked by 1.2 < answer < 8, praised with f"{answer:.1f}";
    # a Fraction passes the test but has no .1f format.
    def success(answer):
        return f"Twice the side took {answer:.1f}x the time here."

    assert check("Exercise 2", Fraction(3), lambda a: 1.2 < a < 8, success=success) == CORRECT
    assert capsys.readouterr().out.splitlines() == ["Exercise 2: correct."]
