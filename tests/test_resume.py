"""Resuming: an interrupted run continues to exactly the weights of an uninterrupted one; a run
interrupted before its first epoch finished restarts; a finished run extends but is not changed."""

from __future__ import annotations

import errno
import json
import shutil

import pytest
import torch
from safetensors.torch import load_file

from wavegms.engine.checkpoint import load_training_state
from wavegms.engine.config import TrainConfig, preset
from wavegms.engine.schedule import lr_factor
from wavegms.engine.train import train
from wavegms.losses import WaveGMSLoss

WEIGHTS = "diffusion_pytorch_model.safetensors"
TIMES = ("train_time_s", "val_time_s")


def config(**overrides):  # noqa: ANN003, ANN201
    # Augmentation on: its randomness must replay exactly too. 8 items / batch 4: 2 steps/epoch.
    settings = {"image_size": 32, "synthetic_sizes": (8, 4, 4), "epochs": 3, "batch_size": 4}
    return preset("quick", device="cpu", augment=True, **{**settings, **overrides})


def without_times(history: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in TIMES} for r in history]


@pytest.fixture(scope="module")
def full_run(tiny_vae, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("full") / "run"
    return train(config(), run_dir, progress=False, tiny_vae=tiny_vae)


def test_interrupted_run_resumes_to_identical_weights(
    full_run, tiny_vae, tmp_path, monkeypatch, capsys
):
    # Ctrl-C in the middle of epoch 3 (its second step): epochs 1-2 are saved, 3 is lost.
    calls = {"n": 0}
    forward = WaveGMSLoss.forward

    def interrupted(self, output, masks):  # noqa: ANN001, ANN202
        calls["n"] += 1
        if calls["n"] == 6:
            raise KeyboardInterrupt
        return forward(self, output, masks)

    monkeypatch.setattr(WaveGMSLoss, "forward", interrupted)
    run_dir = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        train(config(), run_dir, progress=False, tiny_vae=tiny_vae)
    monkeypatch.undo()
    out = capsys.readouterr().out
    assert "Interrupted in epoch 3" in out and "up to epoch 2" in out
    assert f"wavegms train --out {run_dir} --resume" in out
    assert load_training_state(run_dir / "last" / "training_state.pt")["epoch"] == 2
    assert len((run_dir / "log.jsonl").read_text().splitlines()) == 2

    resumed = train(None, run_dir, resume=True, progress=False, tiny_vae=tiny_vae)

    full = load_file(full_run.run_dir / "last" / WEIGHTS)
    again = load_file(run_dir / "last" / WEIGHTS)
    assert full.keys() == again.keys()
    for name in full:
        torch.testing.assert_close(again[name], full[name], rtol=0, atol=1e-6, msg=name)
    assert without_times(resumed.history) == without_times(full_run.history)
    assert (resumed.best_epoch, resumed.best_dice) == (full_run.best_epoch, full_run.best_dice)
    assert json.loads((run_dir / "last" / "metrics.json").read_text())["epoch"] == 3


def test_finished_run_extends_but_refuses_changes_and_overwrites(full_run, tiny_vae, tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(full_run.run_dir, run_dir)

    with pytest.raises(ValueError, match="already holds a training run.*--resume"):
        train(config(), run_dir, progress=False, tiny_vae=tiny_vae)
    with pytest.raises(ValueError, match="Cannot change lr"):
        train(config(lr=1e-3), run_dir, resume=True, progress=False, tiny_vae=tiny_vae)
    with pytest.raises(ValueError, match="--epochs must be at least"):
        train(config(epochs=2), run_dir, resume=True, progress=False, tiny_vae=tiny_vae)
    with pytest.raises(FileNotFoundError, match="No run to resume"):
        train(config(), tmp_path / "empty", resume=True, progress=False, tiny_vae=tiny_vae)

    # Nothing left to do: returns the saved run as it is.
    done = train(None, run_dir, resume=True, progress=False, tiny_vae=tiny_vae)
    assert len(done.history) == 3 and done.best_epoch == full_run.best_epoch

    # More epochs: the cosine is stretched over 4 epochs from where the run stopped. Settings
    # that only change how a step computes may change too (less memory on a smaller GPU).
    more = config(epochs=4, gradient_checkpointing=True)
    longer = train(more, run_dir, resume=True, progress=False, tiny_vae=tiny_vae)
    assert [r["epoch"] for r in longer.history] == [1, 2, 3, 4]
    assert without_times(longer.history[:3]) == without_times(full_run.history)
    assert longer.history[3]["lr"] == pytest.approx(preset("quick").lr * lr_factor(3, 1, 4))
    state = load_training_state(run_dir / "last" / "training_state.pt")
    assert state["epoch"] == 4


def test_a_run_moved_to_another_machine_changes_precision_and_memory_format(
    full_run, tiny_vae, tmp_path
):
    """Trained in fp32 on one machine, extended in bf16 and channels-last on another (as the
    course's PRECISION = "auto" does between a CPU and a GPU): the run goes on from its state."""
    run_dir = tmp_path / "run"
    shutil.copytree(full_run.run_dir, run_dir)
    moved = config(epochs=4, precision="bf16", channels_last=True)
    longer = train(moved, run_dir, resume=True, progress=False, tiny_vae=tiny_vae)
    assert [r["epoch"] for r in longer.history] == [1, 2, 3, 4]
    assert without_times(longer.history[:3]) == without_times(full_run.history)
    assert all(torch.isfinite(torch.tensor(r["train_loss"])) for r in longer.history)
    saved = TrainConfig.load(run_dir / "train_config.json")
    assert (saved.precision, saved.channels_last) == ("bf16", True)


def fail_in_first_step(monkeypatch, error: BaseException) -> None:  # noqa: ANN001
    def failing(self, output, masks):  # noqa: ANN001, ANN202
        raise error

    monkeypatch.setattr(WaveGMSLoss, "forward", failing)


def test_run_interrupted_in_epoch_1_resumes_from_scratch_or_restarts(
    tiny_vae, tmp_path, monkeypatch, capsys
):
    run_dir = tmp_path / "run"
    fail_in_first_step(monkeypatch, KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):
        train(config(epochs=1, lr=1e-3), run_dir, progress=False, tiny_vae=tiny_vae)
    out = capsys.readouterr().out
    assert (run_dir / "train_config.json").is_file()
    assert not (run_dir / "last").exists()
    # The advice printed is a command that works: --resume restarts with the saved settings.
    assert f"wavegms train --out {run_dir} --resume" in out
    monkeypatch.undo()
    resumed = train(None, run_dir, resume=True, progress=False, tiny_vae=tiny_vae)
    assert [r["epoch"] for r in resumed.history] == [1]
    assert TrainConfig.load(run_dir / "train_config.json").lr == 1e-3

    # Any failure in epoch 1 (here a full disk), then a plain start: it starts again.
    other = tmp_path / "other"
    fail_in_first_step(monkeypatch, OSError(errno.ENOSPC, "No space left on device"))
    with pytest.raises(OSError):
        train(config(epochs=1), other, progress=False, tiny_vae=tiny_vae)
    monkeypatch.undo()
    restarted = train(config(epochs=1), other, progress=False, tiny_vae=tiny_vae)
    assert [r["epoch"] for r in restarted.history] == [1]
    assert load_training_state(other / "last" / "training_state.pt")["epoch"] == 1
