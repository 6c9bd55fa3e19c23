"""What a training run tells the person watching it: progress bars, or one line per epoch.

Only rank 0 speaks; :mod:`wavegms.engine.train` calls these at fixed points of its loop. Bars
are drawn only where they redraw in place (a terminal, a notebook widget:
:func:`wavegms.utils.progress.show_bars`); in a log file they fall back to the epoch lines.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tqdm.auto import tqdm

from ..utils.progress import show_bars

if TYPE_CHECKING:
    from torch.utils.data import DataLoader


class Console:
    """Messages of one training run: ``bars`` (tqdm, where they redraw in place) or plain
    lines; silent unless ``main``."""

    def __init__(self, main: bool, bars: bool, epochs: int, start_epoch: int) -> None:
        self.main, self.bars, self.epochs = main, main and show_bars(bars, tqdm), epochs
        self.start_epoch, self.first_epoch_s = start_epoch, 0.0
        self.batch_bar: tqdm | None = None
        self.epoch_bar = tqdm(
            total=epochs, initial=start_epoch, desc="training", unit="epoch", disable=not self.bars
        )

    def start(self, config: Any, splits: Any, precision: str, where: str, run_dir: Path) -> None:
        """Before the first epoch: what is trained on what, where (or that nothing is left)."""
        if self.start_epoch >= self.epochs:
            self.say(
                f"{run_dir} has finished all {self.epochs} epochs; pass a larger --epochs "
                "with --resume to train longer."
            )
            return
        verb = f"resuming from epoch {self.start_epoch}" if self.start_epoch else "training"
        self.say(_banner(verb, config, splits, precision, where, run_dir))
        if not splits.test:
            self.say(
                f"note: no test split ({config.dataset}'s test images are not in the data "
                "folder); best/ is selected on validation, evaluate it on held-out data with "
                "`wavegms evaluate`"
            )

    def say(self, message: str) -> None:
        if not self.main:
            return
        if self.bars:
            tqdm.write(message, file=sys.stdout)
        else:
            print(message, flush=True)

    def batches(self, loader: DataLoader, epoch: int) -> Iterator:
        """``loader``'s batches, counted on the batch bar, reset for 0-based ``epoch``.

        One bar serves every epoch and stays: in a notebook a closed bar is a closed widget,
        which the saved notebook names but cannot show again ("Error displaying widget: model
        not found" once per epoch when it is reopened). It counts beside the loader rather
        than wrapping it: tqdm.auto's wrapper makes an iterator of the loader at once, an
        unused one that starts workers and draws from the shuffling generator."""
        description = f"epoch {epoch + 1}/{self.epochs}"
        if self.batch_bar is None:
            self.batch_bar = tqdm(
                total=len(loader), desc=description, unit="batch", disable=not self.bars
            )
        else:
            self.batch_bar.set_description(description, refresh=False)
            self.batch_bar.reset(total=len(loader))
        for batch in loader:
            yield batch
            self.batch_bar.update()

    def end_epoch(self, record: dict[str, Any], best: dict[str, Any], seconds: float) -> None:
        """After each epoch: the bar's postfix, or a summary line; then the time estimate."""
        self.epoch_bar.set_postfix(_postfix(record, best), refresh=False)
        self.epoch_bar.update()
        if not self.bars:
            self.say(_summary_line(record, self.epochs))
        epoch = record["epoch"] - 1
        if epoch + 1 < self.epochs and epoch - self.start_epoch < 2:
            self._estimate(epoch, seconds)

    def close(self) -> None:
        if self.batch_bar is not None:
            self.batch_bar.close()
        self.epoch_bar.close()

    def _estimate(self, epoch: int, seconds: float) -> None:
        """Time left after this session's first epoch, and again after the second when start-up
        costs (kernel selection, compilation, data caches) made the first unrepresentative."""
        first = epoch == self.start_epoch
        if first:
            self.first_epoch_s = seconds
        if first or abs(seconds - self.first_epoch_s) > 0.25 * self.first_epoch_s:
            left = seconds * (self.epochs - epoch - 1)
            self.say(f"epoch {epoch + 1} took {_duration(seconds)}: ~{_duration(left)} left")

    def interrupted(self, epoch: int, finished: int, run_dir: Path) -> None:
        # --resume works either way: with no finished epoch it starts again from the saved
        # settings (wavegms.engine.checkpoint.resolve_config).
        kept = f"holds the run up to epoch {finished}" if finished else "keeps the run's settings"
        verb = "Continue" if finished else "Start it again"
        self.say(
            f"\nInterrupted in epoch {epoch + 1}; {run_dir} {kept}. {verb} with:\n"
            f"  wavegms train --out {run_dir} --resume"
        )


def _banner(verb: str, config: Any, splits: Any, precision: str, where: str, run_dir: Path) -> str:
    """The first line of a run: what is trained on what, where."""
    return (
        f"{verb}: {config.dataset} ({len(splits.train)} train / {len(splits.val)} val / "
        f"{len(splits.test)} test) at {config.image_size} px, {config.epochs} epochs, batch "
        f"{config.batch_size}, lr {config.lr:g}, {precision} on {where} -> {run_dir}"
    )


def _postfix(record: dict[str, Any], best: dict[str, Any]) -> dict[str, str]:
    postfix = {"loss": f"{record['train_loss']:.3f}"}
    if record.get("val_dice") is not None:
        postfix["val_dice"] = f"{record['val_dice']:.3f}"
    if best.get("dice") is not None:
        postfix[f"best_{best['on']}"] = f"{best['dice']:.3f}"
    if record.get("skipped_steps"):
        postfix["fp16_skipped"] = str(record["skipped_steps"])
    return postfix


def _summary_line(record: dict[str, Any], epochs: int) -> str:
    line = (
        f"epoch {record['epoch']}/{epochs}  lr {record['lr']:.2e}  loss {record['train_loss']:.4f}"
    )
    for part in ("val", "test"):
        if record.get(f"{part}_dice") is not None:
            line += f"  {part} Dice {record[f'{part}_dice']:.4f}"
    if record.get("skipped_steps"):
        line += f"  {record['skipped_steps']} fp16 overflow steps skipped"
    seconds = record["train_time_s"] + record.get("val_time_s", 0.0)
    return line + f"  ({seconds:.1f} s)"


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
