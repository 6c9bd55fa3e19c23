"""Data-parallel training: `torchrun --nproc_per_node=2 -m wavegms train ...` on CPU (gloo)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest
import torch
from ddp_worker import check_agreement, resume_recording_writes
from safetensors.torch import load_file

import wavegms.engine.train
from wavegms.engine.checkpoint import load_model, load_training_state
from wavegms.engine.config import TrainConfig, preset
from wavegms.engine.metrics import dice_iou
from wavegms.engine.run_data import build_datasets
from wavegms.engine.train import train

WEIGHTS = "diffusion_pytorch_model.safetensors"


def test_two_process_cpu_run_completes_and_its_checkpoint_loads(tiny_vae, tmp_path):
    run_dir = tmp_path / "run"
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
        "-m", "wavegms", "train", "--out", str(run_dir), "--device", "cpu", "--no-progress",
        "--epochs", "2", "--image-size", "32", "--synthetic-sizes", "8", "4", "4",
        "--batch-size", "4",
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    # One rank reports; the run ends with every rank holding the same weights (it checks).
    assert done.stdout.count("training: synthetic") == 1
    assert "on cpu x 2 processes" in done.stdout and "epoch 2/2" in done.stdout

    log = [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in log] == [1, 2]
    assert all(r["val_dice"] is not None for r in log)
    state = load_training_state(run_dir / "last" / "training_state.pt")
    assert state["epoch"] == 2
    assert not any(k.startswith("module.") for k in state["model"]), "saved the DDP wrapper"

    # The checkpoint is a plain WaveGMS: it loads and reproduces the logged validation Dice.
    model = load_model(run_dir, device="cpu", tiny_vae=tiny_vae)
    datasets, _ = build_datasets(TrainConfig.load(run_dir / "train_config.json"), run_dir)
    batch = next(iter(torch.utils.data.DataLoader(datasets["val"], batch_size=4)))
    dice, _ = dice_iou(model.predict(batch["image"]) > 0.5, batch["mask"] > 0.5)
    best = json.loads((run_dir / "best" / "metrics.json").read_text())
    assert dice.mean().item() == pytest.approx(best["val_dice"], abs=1e-6)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_ranks_agreement_check_catches_diverged_weights(tmp_path):
    torch.multiprocessing.spawn(check_agreement, args=(free_port(), str(tmp_path)), nprocs=2)
    for rank in range(2):
        same, perturbed = json.loads((tmp_path / f"rank{rank}.json").read_text())
        assert same == "agree"
        assert "different weights" in perturbed


def test_a_two_process_resume_repairs_a_cut_epoch_on_rank_0_only(tiny_vae, tmp_path, monkeypatch):
    # Killed after last/ of epoch 1 was committed, before best/ (epoch 1 improved) was written.
    run_dir, records = tmp_path / "run", tmp_path / "records"
    records.mkdir()

    def killed_before_best(*args):  # noqa: ANN002, ANN202
        raise KeyboardInterrupt

    monkeypatch.setattr(wavegms.engine.train, "save_best", killed_before_best)
    config = preset("quick", device="cpu", image_size=32, synthetic_sizes=(8, 4, 4), epochs=1)
    with pytest.raises(KeyboardInterrupt):
        train(config.replace(batch_size=4), run_dir, progress=False, tiny_vae=tiny_vae)
    monkeypatch.undo()
    state = load_training_state(run_dir / "last" / "training_state.pt")
    assert state["best"]["epoch"] == 1 and not (run_dir / "best").exists()

    # Both ranks restore the training state; only rank 0 writes (two would race on best/).
    args = (free_port(), str(run_dir), str(records))
    torch.multiprocessing.spawn(resume_recording_writes, args=args, nprocs=2)
    written = {rank: json.loads((records / f"rank{rank}.json").read_text()) for rank in (0, 1)}
    assert written[1] == []
    assert "best" in written[0] and "log.jsonl" in written[0]
    metrics = json.loads((run_dir / "best" / "metrics.json").read_text())
    assert metrics["epoch"] == 1 and metrics["checkpoint"] == "best"
    best, last = (load_file(run_dir / name / WEIGHTS) for name in ("best", "last"))
    assert best.keys() == last.keys()
    for name, tensor in last.items():
        torch.testing.assert_close(best[name], tensor, rtol=0, atol=0, msg=name)
    assert sorted(p.name for p in run_dir.iterdir() if p.name.startswith(".")) == []
