"""Running out of GPU memory in training, predict and evaluate (simulated on the CPU: the forward
pass raises PyTorch's ``OutOfMemoryError``): one line that says what to lower, raised once the
failed work's memory is free (the error keeps none of its tensors, so a notebook's retry starts
with the memory free), and one line from the command line (exit 2)."""

from __future__ import annotations

import weakref

import numpy as np
import pytest
import torch
from PIL import Image
from runs import make_run

from wavegms import WaveGMS
from wavegms.cli import main
from wavegms.engine.config import preset
from wavegms.engine.evaluate import evaluate
from wavegms.engine.predict import predict_files
from wavegms.engine.train import train
from wavegms.losses import WaveGMSLoss

# What PyTorch 2.5+ says on a T4, abridged: a paragraph with no advice about the batch.
CUDA_MESSAGE = (
    "CUDA out of memory. Tried to allocate 20.00 MiB. GPU 0 has a total capacity of 14.75 GiB "
    "of which 3.06 MiB is free. Process 7 has 14.74 GiB memory in use. If reserved but "
    "unallocated memory is large try setting PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True "
    "to avoid fragmentation.  See documentation for Memory Management  (https://pytorch.org/"
    "docs/stable/notes/cuda.html#environment-variables)"
)
FREED = "The memory it held is free again: run it again after the change."


class OutOfMemory:
    """Stands in for a forward pass that runs out of memory: it holds a tensor (its
    "activations") in its frame, as a real one does, and raises PyTorch's error."""

    def __init__(self) -> None:
        self.activations: weakref.ref | None = None

    def __call__(self, *args, **kwargs):  # noqa: ANN002, ANN003, ANN204
        activations = torch.ones(1024)
        self.activations = weakref.ref(activations)
        raise torch.OutOfMemoryError(CUDA_MESSAGE)

    def freed(self) -> bool:
        return self.activations is not None and self.activations() is None


def tiny_config(**overrides):  # noqa: ANN003, ANN201
    settings = {"image_size": 32, "synthetic_sizes": (4, 2, 2), "batch_size": 2, "epochs": 1}
    return preset("quick", device="cpu", **{**settings, **overrides})


def test_training_out_of_memory_says_what_to_lower_and_frees_the_step(
    tiny_vae, tmp_path, monkeypatch
):
    failing = OutOfMemory()
    monkeypatch.setattr(WaveGMSLoss, "forward", failing)
    run_dir = tmp_path / "run"
    with pytest.raises(torch.OutOfMemoryError) as caught:
        train(tiny_config(), run_dir, progress=False, tiny_vae=tiny_vae)
    assert str(caught.value) == (
        "Out of memory on cpu (tried to allocate 20.00 MiB on a 14.75 GiB GPU) training at "
        "batch size 2: lower --batch-size (in a new run), turn on --gradient-checkpointing "
        "(also with --resume), or use --precision auto (mixed precision; also with --resume). "
        f"{FREED}"
    )
    # Held, as a notebook holds the last error, it keeps none of the step's tensors.
    assert failing.freed()
    assert caught.value.__context__ is None and caught.value.__cause__ is None

    # What it says works: the run starts again in the same folder with the smaller batch.
    monkeypatch.undo()
    again = train(tiny_config(batch_size=1), run_dir, progress=False, tiny_vae=tiny_vae)
    assert [record["epoch"] for record in again.history] == [1]


def test_training_out_of_memory_offers_only_what_is_not_on_yet(tiny_vae, tmp_path, monkeypatch):
    monkeypatch.setattr(WaveGMSLoss, "forward", OutOfMemory())
    config = tiny_config(gradient_checkpointing=True, precision="bf16")
    with pytest.raises(torch.OutOfMemoryError, match=r"2: lower --batch-size \(in a new run\)\. "):
        train(config, tmp_path / "run", progress=False, tiny_vae=tiny_vae)


def test_the_cli_prints_training_out_of_memory_as_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(WaveGMSLoss, "forward", OutOfMemory())
    argv = ["train", "--out", str(tmp_path / "run"), "--device", "cpu", "--image-size", "32"]
    argv += ["--synthetic-sizes", "4", "2", "2", "--batch-size", "2", "--epochs", "1"]
    assert main([*argv, "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert err.startswith("wavegms train: error: Out of memory on cpu (tried to allocate 20.00")
    assert "lower --batch-size" in err and err.endswith(FREED)


@pytest.fixture
def scan(tmp_path):  # noqa: ANN201 - a 40 x 48 grey PNG
    path = tmp_path / "scan.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (40, 48), np.uint8)).save(path)
    return path


def test_predict_out_of_memory_says_what_to_lower_and_frees_the_batch(
    tiny_vae, tmp_path, scan, monkeypatch, capsys
):
    run_dir = make_run(tmp_path / "run", tiny_vae)
    failing = OutOfMemory()
    monkeypatch.setattr(WaveGMS, "predict", failing)
    with pytest.raises(torch.OutOfMemoryError) as caught:
        predict_files(run_dir, [scan], tmp_path / "masks", device="cpu", progress=False)
    assert str(caught.value) == (
        "Out of memory on cpu (tried to allocate 20.00 MiB on a 14.75 GiB GPU) segmenting "
        "batches of 8 images: lower --batch-size (e.g. 4), or use --precision auto (mixed "
        f"precision). {FREED}"
    )
    assert failing.freed()

    argv = ["--checkpoint", str(run_dir), str(scan), "--out", str(tmp_path / "masks")]
    assert main(["predict", *argv, "--device", "cpu", "--batch-size", "1", "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert "segmenting batches of 1 images: use --precision auto" in err


def test_evaluate_out_of_memory_says_what_to_lower_and_frees_the_batch(
    tiny_vae, tmp_path, monkeypatch
):
    run_dir = make_run(tmp_path / "run", tiny_vae)
    failing = OutOfMemory()
    monkeypatch.setattr(WaveGMS, "predict", failing)
    with pytest.raises(torch.OutOfMemoryError) as caught:
        evaluate(
            run_dir, out_dir=tmp_path / "eval", device="cpu", tiny_vae=tiny_vae, progress=False
        )
    assert "evaluating batches of 16 images: lower --batch-size (e.g. 8)" in str(caught.value)
    assert failing.freed()
    assert not (tmp_path / "eval").exists()
