"""The exercise checks of the course: a verdict for every state of an answer, never a crash."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from wavegms.course.exercises import (
    CORRECT,
    NOT_DONE,
    RETURNED_NOTHING,
    TODO,
    WRONG,
    Wrong,
    as_floats,
    call,
    check,
    close,
    forbid_calls,
    forbidden,
    matches,
    unfinished,
)


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


def test_numpy_and_torch_booleans_and_scalars_count(capsys):
    assert check("Exercise 1", np.float64(0.5), lambda a: np.isclose(a, 0.5)) == CORRECT
    assert check("Exercise 1", torch.tensor(0.5), lambda a: a == 0.5) == CORRECT
    assert check("Exercise 1", np.float32(0.4), lambda a: np.isclose(a, 0.5)) == WRONG
    assert close(np.float64(0.5), 0.5) is True and close(torch.tensor([1.0, 2.0]), [1, 2]) is True
    assert close([0.5, 0.25], (0.5, 0.25)) is True  # a list where a tuple is expected


def test_a_failing_success_remark_does_not_spoil_a_right_answer(capsys):
    assert check("Exercise 1", 3, lambda a: True, success=lambda a: a["missing"]) == CORRECT
    assert capsys.readouterr().out == "Exercise 1: correct.\n"


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
    assert close("0.5", 0.5).startswith("expected numbers like one number")


# A student's function, as the student edition hands it out, and three states of it.
def stub_function(x): ...  # TODO: your code here


def started_function(x):
    doubled = x * 2
    ...  # TODO: your code here
    return doubled + ...


def no_return(x):
    x * 2


def right(x):
    return x * 2


def _test(function):
    return close(call(function, torch.ones(3)), torch.full((3,), 2.0))


def test_a_function_still_holding_the_todo_is_not_done_yet(capsys):
    assert TODO in "    ...  # TODO: your code here"  # what tools/authoring.py writes
    assert unfinished(stub_function) and unfinished(started_function)
    assert not unfinished(right) and not unfinished(print) and not unfinished(3)
    assert check("Exercise 1", stub_function, _test) == NOT_DONE
    assert check("Exercise 1", started_function, _test) == NOT_DONE
    assert check("Exercise 1", right, _test) == CORRECT
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].startswith("Exercise 1: not done yet: replace the `...  # TODO")


def test_a_function_that_returns_nothing_says_so(capsys):
    assert check("Exercise 2", no_return, _test) == WRONG
    assert capsys.readouterr().out == (
        "Exercise 2: not quite: `no_return` ran but returned None: add a `return` with its "
        "result.\n"
    )


def test_a_leftover_ellipsis_is_named(capsys):
    def half_done(x):
        doubled = ...
        return x + doubled

    assert check("Exercise 2", half_done, _test) == WRONG
    assert "a `...` is still in your code (TypeError" in capsys.readouterr().out


def test_a_wrong_raised_by_a_test_is_its_reason(capsys):
    def test(_answer):
        raise Wrong("give a share, not a percent.")

    assert check("Exercise 2", 70, test) == WRONG
    assert capsys.readouterr().out == "Exercise 2: not quite: give a share, not a percent.\n"


# One set of helpers serves every notebook's checks (issue 19): the two stub conventions (a
# `# TODO` line, and named intermediates left as `...` that the function returns) both say
# "not done yet", and the refusals and conversions give a reason, not an exception's type.


def scaffold(x):  # notebooks 03-05: the intermediates are `...` and the function returns them
    doubled = ...
    return {"doubled": doubled}


def test_a_scaffold_returning_its_ellipsis_or_a_value_holding_one_is_not_done_yet(capsys):
    assert check("Exercise 1", scaffold, lambda f: close(call(f, 1.0)["doubled"], 2.0)) == NOT_DONE
    assert check("Exercise 2", (..., ...), lambda pair: pair[0] == 1) == NOT_DONE
    assert check("Exercise 3", {"stripes": ("V", ...)}, lambda answer: False) == NOT_DONE
    printed = capsys.readouterr().out.splitlines()
    assert all(
        line.endswith("replace the `...` in the cell above, then run both cells.")
        for line in printed
    ), printed


def test_no_return_names_the_function_or_says_your_function(capsys):
    with pytest.raises(Wrong, match=f"^`no_return` {RETURNED_NOTHING}"):
        call(no_return, 1.0)
    with pytest.raises(Wrong, match=f"^`your function` {RETURNED_NOTHING}"):
        call(lambda x: None, 1.0)


def test_the_librarys_version_is_refused_by_name_and_while_running():
    def uses_the_library(x):
        return np.fft.fft(x)

    with pytest.raises(Wrong, match=r"^your function calls `fft`: write it yourself\.$"):
        forbid_calls(uses_the_library, ["fft"], "write it yourself.")
    forbid_calls(right, ["fft"], "write it yourself.")  # allowed: no exception

    class Library:
        def run(self):
            return "ran"

    made_earlier = Library()  # reached through an object, not a name the function spells
    with forbidden(Library, "run", "write it yourself."), pytest.raises(Wrong) as refused:
        made_earlier.run()
    assert str(refused.value) == "your function calls `Library`: write it yourself."
    assert made_earlier.run() == "ran", "the library is restored"


def test_numbers_are_read_from_any_container_and_a_non_number_is_a_reason(capsys):
    assert as_floats(torch.tensor([[0.5], [1.0]]), "found") == [0.5, 1.0]
    assert as_floats(np.float32(0.25), "share") == [0.25]
    with pytest.raises(Wrong, match="^share should be a number or a list of numbers, got 'half'"):
        as_floats("half", "share")
    assert check("Exercise 6", "half", lambda a: as_floats(a, "share") == [0.5]) == WRONG
    assert "not quite: share should be a number" in capsys.readouterr().out


def test_matches_names_the_shape_then_a_known_slip_then_the_difference():
    expected = torch.arange(6.0).view(2, 3)
    slips = {"the rows are reversed.": expected.flip(0)}
    assert matches(expected.clone(), expected, slips) is True
    assert matches(expected.T, expected, slips, shape_hint=" (rows first)") == (
        "shape (3, 2), expected (2, 3) (rows first)"
    )
    assert matches(expected.flip(0), expected, slips) == "the rows are reversed."
    assert matches(expected + 1, expected, slips).startswith("largest difference 1")
