"""Issue 12, the training side: run folders never get stuck, raced, overwritten, left with
temporary files or an inconsistent ``last/``; files a user shares follow the umask; bad
settings files and system errors are one line (exit 2).

Faults are injected (monkeypatched failures, a process holding the lock, hand-made files): no
root, no real full disk.
"""

from __future__ import annotations

import errno
import json
import os
import re
import stat
import subprocess
import sys
import textwrap

import pytest
import torch
from safetensors.torch import load_file

import wavegms.engine.train
from wavegms.cli import main
from wavegms.engine.checkpoint import load_training_state
from wavegms.engine.config import TrainConfig, preset
from wavegms.engine.train import train
from wavegms.losses import WaveGMSLoss
from wavegms.utils import atomic
from wavegms.utils.lock import FolderInUseError, claim_folder

WEIGHTS = "diffusion_pytorch_model.safetensors"


def config(**overrides):  # noqa: ANN003, ANN201
    settings = {"image_size": 32, "synthetic_sizes": (8, 4, 4), "epochs": 1, "batch_size": 4}
    return preset("quick", device="cpu", **{**settings, **overrides})


def fail_in_first_step(monkeypatch, error: BaseException) -> None:  # noqa: ANN001
    def failing(self, output, masks):  # noqa: ANN001, ANN202
        raise error

    monkeypatch.setattr(WaveGMSLoss, "forward", failing)


# ---- 1: a run with no finished epoch is never stuck ---------------------------------------------


def test_run_interrupted_in_epoch_1_resumes_from_scratch_or_restarts(
    tiny_vae, tmp_path, monkeypatch, capsys
):
    run_dir = tmp_path / "run"
    fail_in_first_step(monkeypatch, KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):
        train(config(lr=1e-3), run_dir, progress=False, tiny_vae=tiny_vae)
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
        train(config(), other, progress=False, tiny_vae=tiny_vae)
    monkeypatch.undo()
    restarted = train(config(), other, progress=False, tiny_vae=tiny_vae)
    assert [r["epoch"] for r in restarted.history] == [1]
    assert load_training_state(other / "last" / "training_state.pt")["epoch"] == 1


# ---- 3: one run per folder ---------------------------------------------------------------------


def test_a_folder_held_by_a_live_run_is_refused_and_a_dead_runs_lock_is_taken_over(
    tiny_vae, tmp_path, capsys
):
    run_dir = tmp_path / "run"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(f"""
                import time
                from wavegms.utils.lock import claim_folder
                with claim_folder({str(run_dir)!r}):
                    print("held", flush=True)
                    time.sleep(600)
            """),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        in_use = f"{re.escape(str(run_dir))} is in use.*process {holder.pid}"
        with pytest.raises(FolderInUseError, match=in_use):
            train(config(), run_dir, progress=False, tiny_vae=tiny_vae)
        assert sorted(p.name for p in run_dir.iterdir()) == ["run.lock"]  # nothing written
        assert main(["train", "--out", str(run_dir), "--image-size", "32"]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "is in use by another training run" in err
    finally:
        holder.kill()  # like kill -9: its run.lock stays behind
        holder.wait()
    assert (run_dir / "run.lock").read_text().strip() == str(holder.pid)
    with claim_folder(run_dir):
        assert (run_dir / "run.lock").read_text().strip() == str(os.getpid())
    assert list(run_dir.iterdir()) == []  # the lock goes with the claim


# ---- 9: a user's folder is not overwritten -----------------------------------------------------


def test_train_refuses_a_non_empty_folder_that_is_not_a_run(tmp_path, capsys):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "curves.png").write_bytes(b"the user's own figure")
    assert main(["train", "--out", str(folder), "--image-size", "32", "--epochs", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert f"{folder} is not empty and holds no training run" in err
    assert sorted(p.name for p in folder.iterdir()) == ["curves.png"]
    assert (folder / "curves.png").read_bytes() == b"the user's own figure"


# ---- 12: kill -9 leaves no temporary files and never a last/ that disagrees with its state ----


def test_commit_cut_by_a_kill_is_finished_and_stale_temporaries_are_removed(
    tiny_vae, tmp_path, monkeypatch
):
    run_dir = tmp_path / "run"
    replace = os.replace

    def killed_before_the_swap_ends(src, dst):  # noqa: ANN001, ANN202
        if str(src).endswith(".last.ready") and (run_dir / ".last.old").exists():
            raise KeyboardInterrupt  # stands in for kill -9 between the two renames
        return replace(src, dst)

    monkeypatch.setattr(atomic.os, "replace", killed_before_the_swap_ends)
    with pytest.raises(KeyboardInterrupt):
        train(config(epochs=2), run_dir, progress=False, tiny_vae=tiny_vae)
    monkeypatch.undo()
    # What kill -9 leaves: the new epoch complete under its temporary name, the old one moved
    # aside, and temporary files of interrupted atomic writes.
    assert not (run_dir / "last").exists()
    assert load_training_state(run_dir / ".last.ready" / "training_state.pt")["epoch"] == 2
    (run_dir / ".log.jsonl.x1y2.tmp").write_text("half")
    (run_dir / ".last.partial").mkdir()
    (run_dir / "best" / f".{WEIGHTS}.abc.tmp").write_bytes(b"half")
    (run_dir / ".training_state.pt.q.tmp").write_bytes(b"half")

    done = train(None, run_dir, resume=True, progress=False, tiny_vae=tiny_vae)
    assert [r["epoch"] for r in done.history] == [1, 2]
    state = load_training_state(run_dir / "last" / "training_state.pt")
    metrics = json.loads((run_dir / "last" / "metrics.json").read_text())
    weights = load_file(run_dir / "last" / WEIGHTS)
    assert state["epoch"] == metrics["epoch"] == 2
    for name, tensor in state["model"].items():
        torch.testing.assert_close(weights[name], tensor, rtol=0, atol=0)
    assert len((run_dir / "log.jsonl").read_text().splitlines()) == 2
    leftovers = [p for p in run_dir.rglob(".*") if p.name != ".gitignore"]
    assert leftovers == []


def test_best_is_never_ahead_of_last_and_a_cut_best_commit_is_redone_on_resume(
    tiny_vae, tmp_path, monkeypatch
):
    run_dir = tmp_path / "run"

    def killed_before_best(*args):  # noqa: ANN002, ANN202
        raise KeyboardInterrupt  # stands in for kill -9 after last/ was committed

    monkeypatch.setattr(wavegms.engine.train, "save_best", killed_before_best)
    with pytest.raises(KeyboardInterrupt):
        train(config(epochs=1), run_dir, progress=False, tiny_vae=tiny_vae)
    monkeypatch.undo()
    state = load_training_state(run_dir / "last" / "training_state.pt")
    assert state["epoch"] == 1 and state["best"]["epoch"] == 1  # the epoch is committed
    assert not (run_dir / "best").exists()  # and best/ is not ahead of it

    done = train(None, run_dir, resume=True, progress=False, tiny_vae=tiny_vae)
    assert done.best_epoch == 1
    metrics = json.loads((run_dir / "best" / "metrics.json").read_text())
    assert metrics["epoch"] == 1 and metrics["checkpoint"] == "best"
    best, last = (load_file(run_dir / name / WEIGHTS) for name in ("best", "last"))
    for name, tensor in last.items():
        torch.testing.assert_close(best[name], tensor, rtol=0, atol=0)


# ---- 13: files follow the umask ---------------------------------------------------------------


def test_every_file_of_a_run_follows_the_umask(tiny_vae, tmp_path):
    previous = os.umask(0o002)  # after the package was imported: it must read the umask now
    try:
        run = train(config(), tmp_path / "run", progress=False, tiny_vae=tiny_vae)
    finally:
        os.umask(previous)
    files = [p for p in run.run_dir.rglob("*") if p.is_file()]
    assert {p.name for p in files} >= {WEIGHTS, "splits.json", "training_state.pt"}
    modes = {str(p.relative_to(run.run_dir)): oct(stat.S_IMODE(p.stat().st_mode)) for p in files}
    assert set(modes.values()) == {oct(0o664)}, modes


# ---- 4: bad settings files, damaged states, system errors: one line, exit 2 -------------------


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ('{"image_size": 64,', "is not valid JSON"),
        ("[1, 2]", "holds a JSON list, not an object"),
        ('{"image_size": "64"}', "image_size='64' has the wrong type"),
        ('{"augment": 1}', "augment=1 has the wrong type"),
        ('{"epochs": 0}', "Invalid epochs=0"),
    ],
)
def test_bad_train_config_names_the_file(tmp_path, capsys, content, expected):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "train_config.json").write_text(content)
    assert main(["train", "--out", str(run_dir), "--resume"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert str(run_dir / "train_config.json") in err and expected in err


def test_truncated_training_state_names_the_file(tiny_vae, tmp_path, capsys):
    run_dir = tmp_path / "run"
    train(config(), run_dir, progress=False, tiny_vae=tiny_vae)
    state = run_dir / "last" / "training_state.pt"
    state.write_bytes(state.read_bytes()[:1000])
    assert main(["train", "--out", str(run_dir), "--resume", "--epochs", "2"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"{state} is damaged" in err


def test_out_that_is_a_file_or_a_full_disk_is_one_line(tmp_path, capsys, monkeypatch):
    a_file = tmp_path / "file"
    a_file.write_text("x")
    assert main(["train", "--out", str(a_file), "--image-size", "32"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"{a_file} is a file" in err

    def full(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("wavegms.utils.lock.os.open", full)
    assert main(["train", "--out", str(tmp_path / "run"), "--image-size", "32"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "No space left on device" in err and "disk is full" in err
