"""The training console: progress bars that a saved notebook can show again."""

from __future__ import annotations

import ipywidgets
import pytest
from tqdm.notebook import tqdm as notebook_tqdm

from wavegms.engine import console


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
