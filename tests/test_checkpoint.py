"""Run folders (``wavegms.engine.checkpoint``): what a run writes and how it is read back.

Which folder a path names (:func:`resolve_checkpoint`, :func:`find_run_dir`), what a folder
holds (:func:`run_status`), training states read without unpickling code, and a run folder
that is never overwritten, left with temporary files or with a ``last/`` or ``best/`` that
disagrees with its state, whenever a run is killed; the files follow the umask. Kills are
injected (monkeypatched failures, hand-made leftovers): no root, no real full disk.
"""

from __future__ import annotations

import errno
import json
import os
import stat
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

import wavegms.engine.train
from wavegms.cli import main
from wavegms.data.splits import SPLITS_FILE
from wavegms.engine.checkpoint import (
    METRICS,
    TRAIN_CONFIG,
    TRAINING_STATE,
    atomic_torch_save,
    find_run_dir,
    load_train_config,
    load_training_state,
    recover_run_dir,
    resolve_checkpoint,
    run_status,
)
from wavegms.engine.config import preset
from wavegms.engine.train import train
from wavegms.utils import atomic
from wavegms.utils.lock import LOCK_NAME

WEIGHTS = "diffusion_pytorch_model.safetensors"


def config(**overrides):  # noqa: ANN003, ANN201
    settings = {"image_size": 32, "synthetic_sizes": (8, 4, 4), "epochs": 1, "batch_size": 4}
    return preset("quick", device="cpu", **{**settings, **overrides})


def make_folder(folder, files: dict[str, bytes]):  # noqa: ANN001, ANN201
    """``folder`` holding ``files`` (name -> bytes): a hand-made checkpoint or leftover."""
    folder.mkdir(parents=True)
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return folder


# ---- which folder a path names -------------------------------------------------------------------


def test_resolve_checkpoint_takes_a_checkpoint_or_a_runs_best_then_last(tmp_path, monkeypatch):
    run = tmp_path / "run"
    last = make_folder(run / "last", {"config.json": b"{}"})
    assert resolve_checkpoint(run) == last  # no best/ yet
    best = make_folder(run / "best", {"config.json": b"{}"})
    assert resolve_checkpoint(run) == best
    assert resolve_checkpoint(last) == last  # a checkpoint folder is itself
    monkeypatch.setenv("HOME", str(tmp_path))
    assert resolve_checkpoint("~/run") == best


def test_resolve_checkpoint_says_what_it_expected(tmp_path):
    make_folder(tmp_path / "run" / "best", {WEIGHTS: b""})  # weights without config.json
    with pytest.raises(FileNotFoundError) as e:
        resolve_checkpoint(tmp_path / "run")
    message = str(e.value)
    assert f"No Wave-GMS checkpoint in {str(tmp_path / 'run')!r}" in message
    assert "best/ or last/" in message and "config.json" in message


def test_find_run_dir_from_the_run_or_one_of_its_checkpoints(tmp_path):
    run = tmp_path / "run"
    best = make_folder(run / "best", {"config.json": b"{}"})
    saved = preset("quick", image_size=32)
    saved.save(run / TRAIN_CONFIG)
    assert find_run_dir(run) == run and find_run_dir(best) == run
    assert load_train_config(best) == saved
    loose = make_folder(tmp_path / "exported", {"config.json": b"{}"})  # outside any run
    assert find_run_dir(loose) is None and load_train_config(loose) is None


# ---- what a folder holds -------------------------------------------------------------------------


def test_run_status_tells_runs_from_empty_and_foreign_folders(tmp_path):
    run = tmp_path / "run"
    assert run_status(run) == "empty"  # missing
    make_folder(run / ".last.partial", {"config.json": b"{}"})
    (run / LOCK_NAME).write_text("123\n")
    (run / ".log.jsonl.x1y2.tmp").write_text("half")
    assert run_status(run) == "empty"  # a lock and what a killed start left: nothing of a run
    (run / SPLITS_FILE).write_text("{}")
    assert run_status(run) == "started"  # the splits were saved, no epoch finished
    (run / TRAIN_CONFIG).write_text("{}")
    assert run_status(run) == "started"
    make_folder(run / "last", {TRAINING_STATE: b""})
    assert run_status(run) == "finished"

    mine = make_folder(tmp_path / "mine", {"notes.txt": b"mine", SPLITS_FILE: b"{}"})
    assert run_status(mine) == "foreign"  # a splits file beside a user's files is no run


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


@pytest.mark.parametrize("resume", [True, False])
def test_trained_results_without_last_are_never_replaced(tmp_path, capsys, resume):
    # last/ deleted by hand, best/ and the log kept: a resume has nothing to go on from, and a
    # restart at epoch 1 would write over the trained best/ and log.jsonl.
    run = tmp_path / "run"
    preset("quick", image_size=32, epochs=1).save(run / TRAIN_CONFIG)
    make_folder(run / "best", {METRICS: b'{"epoch": 7}', "config.json": b"{}"})
    (run / "log.jsonl").write_text('{"epoch": 7}\n')
    assert run_status(run) == "orphaned"
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    args = ["train", "--out", str(run), "--image-size", "32", "--epochs", "1"]
    assert main([*args, "--resume"] if resume else args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no last/" in err and "nothing was written" in err
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == before


# ---- training states -----------------------------------------------------------------------------


def test_a_training_state_round_trips_tensors_and_plain_values(tmp_path):
    path = tmp_path / TRAINING_STATE
    state = {
        "epoch": 3,
        "model": {"weight": torch.arange(6.0).reshape(2, 3)},
        "best": {"epoch": 2, "dice": 0.5, "on": "val"},
        "history": [{"epoch": 1, "val_dice": None}],
        "rng": {"torch": torch.get_rng_state(), "cuda": []},
    }
    atomic_torch_save(state, path)
    loaded = load_training_state(path)
    assert {k: loaded[k] for k in ("epoch", "best", "history")} == {
        k: state[k] for k in ("epoch", "best", "history")
    }
    torch.testing.assert_close(loaded["model"]["weight"], state["model"]["weight"])
    assert torch.equal(loaded["rng"]["torch"], state["rng"]["torch"])
    assert [p.name for p in tmp_path.iterdir()] == [TRAINING_STATE]  # no temporary file left


class Payload:
    """Makes the folder ``marker`` when unpickled: what a hostile training_state.pt could do."""

    def __init__(self, marker) -> None:  # noqa: ANN001
        self.marker = marker

    def __reduce__(self):  # noqa: ANN204
        return os.mkdir, (str(self.marker),)


def test_a_training_state_is_read_without_running_pickled_code(tmp_path):
    path, marker = tmp_path / TRAINING_STATE, tmp_path / "code-ran"
    torch.save({"epoch": 1, "payload": Payload(marker)}, path)
    with pytest.raises(ValueError) as e:
        load_training_state(path)
    message = str(e.value)
    assert message.startswith(f"{path} is damaged or not a training state") and "\n" not in message
    assert not marker.exists()
    torch.load(path, weights_only=False)  # the payload is live: a plain unpickling runs it
    assert marker.is_dir()


@pytest.mark.parametrize("content", [[1, 2], {"model": {}}], ids=["list", "no-epoch"])
def test_a_file_that_is_not_a_training_state_is_named(tmp_path, content):
    path = tmp_path / TRAINING_STATE
    torch.save(content, path)
    with pytest.raises(ValueError, match="is not a training state written by `wavegms train`"):
        load_training_state(path)
    with pytest.raises(FileNotFoundError):
        load_training_state(tmp_path / "absent.pt")


def test_truncated_training_state_names_the_file(tiny_vae, tmp_path, capsys):
    run_dir = tmp_path / "run"
    train(config(), run_dir, progress=False, tiny_vae=tiny_vae)
    state = run_dir / "last" / "training_state.pt"
    state.write_bytes(state.read_bytes()[:1000])
    assert main(["train", "--out", str(run_dir), "--resume", "--epochs", "2"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"{state} is damaged" in err


# ---- a killed run's leftovers --------------------------------------------------------------------


def test_recovery_finishes_a_cut_swap_or_puts_the_previous_folder_back(tmp_path):
    run = tmp_path / "run"
    make_folder(run / ".last.old", {TRAINING_STATE: b"epoch 1"})
    make_folder(run / ".last.ready", {TRAINING_STATE: b"epoch 2"})  # complete: the swap was cut
    make_folder(run / ".best.old", {METRICS: b'{"epoch": 1}'})  # nothing complete replaces it
    make_folder(run / ".best.partial", {"config.json": b"{}"})
    (run / ".log.jsonl.ab12.tmp").write_text("half")
    recover_run_dir(run)
    assert (run / "last" / TRAINING_STATE).read_bytes() == b"epoch 2"
    assert (run / "best" / METRICS).read_bytes() == b'{"epoch": 1}'
    assert sorted(p.name for p in run.iterdir()) == ["best", "last"]


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


# ---- files follow the umask ----------------------------------------------------------------------


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


def test_a_full_disk_while_saving_a_training_state_is_an_os_error_and_leaves_nothing(tmp_path):
    # RLIMIT_FSIZE stands for a full disk (a write past it fails with an errno, as ENOSPC
    # does); torch's own zip writer would report "enforce fail at inline_container.cc".
    script = (
        "import resource, signal, sys, torch\n"
        "from wavegms.engine.checkpoint import atomic_torch_save\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))\n"
        "try:\n"
        "    atomic_torch_save({'w': torch.zeros(1 << 20)}, sys.argv[1])\n"
        "except OSError as e:\n"
        "    print('OSError', e.errno, e.strerror)\n"
    )
    target = tmp_path / "state" / "training_state.pt"
    done = subprocess.run(
        [sys.executable, "-c", script, str(target)], capture_output=True, text=True, check=True
    )
    assert done.stdout.startswith(f"OSError {errno.EFBIG} File too large"), done.stdout
    assert list(target.parent.iterdir()) == []  # no half-written file, no temporary one
