"""What enters is checked where it enters, and a file that cannot be read is named with the
real reason (issue 22, items 2, 11 and 18): a TAESD folder that is not TAESD, files without
read permission, a damaged input image, a sample size the model cannot use."""

from __future__ import annotations

import builtins
import errno
import io
import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from runs import export_synthetic, make_run

from wavegms import TinyVAEUnavailableError, load_tiny_vae
from wavegms.cli import main
from wavegms.course.samples import load_samples
from wavegms.data import SegmentationDataset, SyntheticDataset
from wavegms.tiny_vae import TAESD_ENV


@pytest.fixture
def run_dir(tmp_path, tiny_vae) -> Path:
    return make_run(tmp_path / "run", tiny_vae)


@pytest.fixture
def image(tmp_path) -> Path:
    path = tmp_path / "scan.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (40, 48), np.uint8)).save(path)
    return path


def _unreadable(path: Path, monkeypatch) -> None:
    """Make ``path`` unreadable: its mode for an ordinary user, and every open() of it for
    root too (root reads any file whatever its mode)."""
    path.chmod(0)
    denied = os.path.abspath(path)

    def guarded(real):
        def open_(file, *args, **kwargs):
            if isinstance(file, (str, os.PathLike)) and os.path.abspath(file) == denied:
                raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(file))
            return real(file, *args, **kwargs)

        return open_

    monkeypatch.setattr(builtins, "open", guarded(builtins.open))
    monkeypatch.setattr(io, "open", guarded(io.open))


def _predict(run_dir: Path, *inputs: Path, out: Path) -> int:
    argv = ["predict", "--checkpoint", str(run_dir), *map(str, inputs), "--out", str(out)]
    return main([*argv, "--no-progress", "--device", "cpu"])


# ---- 2: a TAESD folder that is not TAESD ------------------------------------------------------


def test_a_folder_that_is_not_taesd_is_refused_where_taesd_is_loaded(run_dir, image, tmp_path):
    checkpoint = run_dir / "best"  # a Wave-GMS checkpoint: config.json + weights, not TAESD's
    with pytest.raises(TinyVAEUnavailableError) as error:
        load_tiny_vae(checkpoint)
    message = str(error.value)
    assert str(checkpoint) in message and "is not TAESD" in message and "WaveGMS" in message
    assert TAESD_ENV in message and "\n" not in message


def test_predict_with_a_wrong_taesd_exits_2_and_writes_nothing(
    run_dir, image, tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv(TAESD_ENV, str(run_dir / "best"))
    assert _predict(run_dir, image, out=tmp_path / "masks") == 2
    err = capsys.readouterr().err.strip()
    assert "is not TAESD" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "masks").exists()  # not all-background masks with exit 0


# ---- 11: files that cannot be read ------------------------------------------------------------


@pytest.mark.parametrize("name", ["diffusion_pytorch_model.safetensors", "config.json"])
def test_unreadable_checkpoint_files_are_named_as_unreadable(
    name, run_dir, image, tmp_path, monkeypatch, capsys
):
    _unreadable(run_dir / "best" / name, monkeypatch)
    assert _predict(run_dir, image, out=tmp_path / "masks") == 2
    err = capsys.readouterr().err.strip()
    assert f"cannot read {run_dir / 'best' / name}: Permission denied" in err
    assert "No such file" not in err and "choose another folder" not in err


def test_an_unreadable_input_image_is_not_called_corrupt(
    run_dir, image, tmp_path, monkeypatch, capsys
):
    _unreadable(image, monkeypatch)
    assert _predict(run_dir, image, out=tmp_path / "masks") == 2
    err = capsys.readouterr().err
    assert f"skipped {image}: cannot read {image}: Permission denied" in err
    assert "corrupt" not in err and "data_download" not in err


def test_a_damaged_image_gets_the_dataset_hint_only_in_a_dataset(run_dir, tmp_path, capsys):
    root = export_synthetic(SyntheticDataset(n=2, image_size=32, seed=0), tmp_path / "data" / "toy")
    damaged = sorted((root / "images").iterdir())[0]
    damaged.write_bytes(damaged.read_bytes()[:60])  # truncated

    assert _predict(run_dir, damaged, out=tmp_path / "masks") == 2
    err = capsys.readouterr().err
    assert f"cannot read image {damaged}" in err and "corrupt or truncated" in err
    assert "data_download" not in err  # an input of predict is no prepared dataset

    with pytest.raises(ValueError) as error:
        SegmentationDataset(root, image_size=32)[0]
    assert "corrupt or truncated" in str(error.value) and "data_download" in str(error.value)


# ---- 18: sample sizes --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "problem"),
    [(30, "not divisible by 8"), (0, "not positive"), ("224", "not an integer"), (-8, "positive")],
)
def test_load_samples_refuses_a_size_the_model_cannot_use(size, problem):
    with pytest.raises(ValueError, match=f"image_size=.*{problem}"):
        load_samples(image_size=size)


# ---- a checkpoint's config.json is checked field by field ------------------------------------


@pytest.mark.parametrize(
    ("field", "value", "said"),
    [
        ("lmm_channel_mult", [], "lmm_channel_mult must be a non-empty list of positive integers"),
        ("encoder_channel_mult", [1, -2], "encoder_channel_mult must be a non-empty list"),
        ("lmm_base_channels", -32, "lmm_base_channels must be a positive integer, got -32"),
        ("image_size", 30, "Invalid image_size=30: not divisible by 8"),
    ],
)
def test_a_checkpoint_config_with_impossible_values_is_named_in_one_line(
    run_dir, image, tmp_path, capsys, field, value, said
):
    config = run_dir / "best" / "config.json"
    values = json.loads(config.read_text())
    config.write_text(json.dumps({**values, field: value}))
    assert _predict(run_dir, image, out=tmp_path / "masks") == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(config) in err and said in err, err
    assert "Traceback" not in err and not (tmp_path / "masks").exists()
