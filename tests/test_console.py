"""The training console: progress bars that a saved notebook can show again, and plain lines
where a bar would not redraw in place (a log file)."""

from __future__ import annotations

import io
import sys

import ipywidgets
import pytest
from tqdm.notebook import tqdm as notebook_tqdm

from wavegms.course import execution
from wavegms.engine import console
from wavegms.utils.progress import show_bars


def test_one_batch_bar_serves_every_epoch_and_no_bar_widget_is_closed(monkeypatch) -> None:
    """A closed bar is a closed widget, and a saved notebook reopened later shows "Error
    displaying widget: model not found" in its place: the notebook's bars are never closed."""
    made, closed = [], []
    monkeypatch.setattr(ipywidgets.Widget, "close", lambda self: closed.append(self))

    class RecordingTqdm(notebook_tqdm):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            made.append(self)

    monkeypatch.setattr(console, "tqdm", RecordingTqdm)
    run = console.Console(main=True, bars=True, epochs=3, start_epoch=0)
    for epoch in range(3):
        assert list(run.batches([10, 20, 30, 40], epoch)) == [10, 20, 30, 40]
        assert [(bar.n, bar.total) for bar in made[1:]][-1] == (4, 4)
        run.end_epoch({"epoch": epoch + 1, "train_loss": 1.0, "lr": 1e-3}, {}, seconds=1.0)
    run.close()
    assert len(made) == 2, "the epoch bar and one batch bar, not one bar per epoch"
    assert made[1].desc.startswith("epoch 3/3") and made[0].n == 3
    assert closed == []


@pytest.mark.parametrize("bars", [True, False])
def test_batches_yields_every_batch_with_or_without_bars(bars) -> None:
    run = console.Console(main=True, bars=bars, epochs=1, start_epoch=0)
    assert list(run.batches(range(5), 0)) == list(range(5))
    run.close()


class Stream(io.StringIO):
    """A captured stdout or stderr that is, or is not, a terminal."""

    def __init__(self, terminal: bool) -> None:
        super().__init__()
        self.terminal = terminal

    def isatty(self) -> bool:
        return self.terminal


def _streams(monkeypatch, terminal: bool) -> tuple[Stream, Stream]:
    out, err = Stream(terminal), Stream(terminal)
    monkeypatch.setattr(sys, "stdout", out)
    monkeypatch.setattr(sys, "stderr", err)
    return out, err


def test_bars_are_shown_on_a_terminal_or_as_widgets_only(monkeypatch) -> None:
    _streams(monkeypatch, terminal=True)
    assert show_bars(True) and not show_bars(False)
    _streams(monkeypatch, terminal=False)  # `wavegms train ... > log.txt`, a pipe, a CI log
    assert not show_bars(True)
    assert show_bars(True, notebook_tqdm)  # a widget redraws whatever the streams are
    monkeypatch.setattr(sys, "stdout", None)  # pythonw: no stdout at all
    assert not show_bars(True)


def test_a_training_log_that_is_no_terminal_gets_epoch_lines_not_escape_codes(monkeypatch):
    out, err = _streams(monkeypatch, terminal=False)
    run = console.Console(main=True, bars=True, epochs=2, start_epoch=0)  # bars asked for
    for epoch in range(2):
        assert list(run.batches(range(3), epoch)) == [0, 1, 2]
        record = {"epoch": epoch + 1, "train_loss": 0.5, "lr": 1e-3, "train_time_s": 1.0}
        run.end_epoch(record, {}, seconds=1.0)
    run.close()
    log = out.getvalue() + err.getvalue()
    assert "\x1b[" not in log and "\r" not in log, repr(log)  # no cursor moves, no redraws
    summaries = [line for line in out.getvalue().splitlines() if line.startswith("epoch ")]
    assert summaries[0].startswith("epoch 1/2  lr") and summaries[-1].startswith("epoch 2/2  lr")


def test_on_a_terminal_the_training_bars_are_drawn(monkeypatch):
    _, err = _streams(monkeypatch, terminal=True)
    run = console.Console(main=True, bars=True, epochs=1, start_epoch=0)
    list(run.batches(range(3), 0))
    run.close()
    assert run.bars and "\r" in err.getvalue()


@pytest.mark.parametrize("terminal", [True, False])
def test_the_course_runner_shows_papermills_bar_on_a_terminal_only(monkeypatch, terminal):
    _streams(monkeypatch, terminal)
    bar = execution.progress("03_lmm_training")
    assert (bar is not False) is terminal  # in a log: the runner's own line per notebook
