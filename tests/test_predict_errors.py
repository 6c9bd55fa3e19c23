"""Errors in prediction (``WaveGMS.predict``, ``predict_files``, ``wavegms predict``): no
silently wrong masks from out-of-range pixels, one mask per name given, one failed image never
stops the others, damaged checkpoints and unusable --out folders are one line naming the file
(exit 2), exit 1 only for "some images failed"."""

from __future__ import annotations

import errno
import pickle

import numpy as np
import pytest
import torch
from PIL import Image
from runs import IMAGE_SIZE, make_run, untrained_model

from wavegms import WaveGMS
from wavegms.cli import main

WEIGHTS = "diffusion_pytorch_model.safetensors"


@pytest.fixture
def model(tiny_vae) -> WaveGMS:
    return untrained_model(tiny_vae)


@pytest.fixture
def run_dir(tmp_path, tiny_vae):  # noqa: ANN201
    return make_run(tmp_path / "run", tiny_vae)


def grey_png(path, seed: int = 0):  # noqa: ANN001, ANN201
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 255, (40, 48), np.uint8)).save(path)
    return path


def predict(run_dir, *images, out, more=()) -> int:  # noqa: ANN001
    argv = ["--checkpoint", str(run_dir), *map(str, images), "--out", str(out), "--no-progress"]
    return main(["predict", *argv, *more])


def one_line(capsys) -> str:  # noqa: ANN001
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    return err


# ---- out-of-range pixels -------------------------------------------------------------------------


def test_predict_refuses_nan_and_off_scale_pixels_and_scales_uint8(model):
    torch.manual_seed(1)
    images = torch.rand(2, 3, IMAGE_SIZE, IMAGE_SIZE)
    with_nan = images.clone()
    with_nan[0, :, :4, :4] = float("nan")
    with pytest.raises(ValueError, match="48 NaN or infinite values.*nan_to_num"):
        model.predict(with_nan)
    with pytest.raises(ValueError, match=r"must be in \[0, 1\].*divide 0..255 images by 255"):
        model.predict(images * 255)
    with pytest.raises(ValueError, match="int16.*convert them to float"):
        model.predict((images * 255).to(torch.int16))

    as_uint8 = (images * 255).round().to(torch.uint8)  # uint8: scaled by 1/255
    torch.testing.assert_close(model.predict(as_uint8), model.predict(as_uint8.float() / 255))
    # numpy arrays in the tensor layout are taken; channels-last ones get the conversion.
    torch.testing.assert_close(model.predict(images.numpy()), model.predict(images))
    with pytest.raises(ValueError, match=r"\[B, 3, H, W\].*permute\(0, 3, 1, 2\)"):
        model.predict(images.permute(0, 2, 3, 1).numpy())


def test_cli_reports_an_image_with_nan_pixels_by_name_and_goes_on(tmp_path, run_dir, capsys):
    values = np.random.default_rng(0).random((40, 48), dtype=np.float32)
    values[10:20, 10:20] = np.nan
    bad = tmp_path / "scan.tif"
    Image.fromarray(values).save(bad)  # a float ("F") TIFF
    good = grey_png(tmp_path / "good.png")
    out = tmp_path / "masks"
    assert predict(run_dir, bad, good, out=out) == 1
    err = capsys.readouterr().err
    assert f"skipped {bad}: images hold 300 NaN or infinite values" in err
    assert sorted(p.name for p in out.iterdir()) == ["good.png"]


# ---- a symlink with another name is an input of its own ------------------------------------------


def test_symlinked_input_with_another_name_gets_its_own_mask(tmp_path, model):
    from wavegms.engine.predict import predict_files

    image = grey_png(tmp_path / "a.png")
    (tmp_path / "b.png").symlink_to(image)
    report = predict_files(
        model, [image, tmp_path / "b.png", tmp_path / "a.png"], tmp_path / "out", progress=False
    )
    assert [p.name for p in report.written] == ["a.png", "b.png"]  # the same name given twice: once
    assert not report.failed


# ---- one failed write fails one image; exit 2 only when nothing came out -------------------------


def test_a_mask_that_cannot_be_written_fails_that_image_only(tmp_path, run_dir, capsys):
    images = [grey_png(tmp_path / f"{name}.png", seed) for seed, name in enumerate("abc")]
    out = tmp_path / "out"
    (out / "b.png").mkdir(parents=True)  # a folder where b's mask should go
    assert predict(run_dir, *images, out=out, more=["--batch-size", "3"]) == 1
    err = capsys.readouterr().err
    assert f"skipped {images[1]}: could not write its mask" in err and "Traceback" not in err
    assert (out / "a.png").is_file() and (out / "c.png").is_file()


def test_full_disk_is_reported_per_image_and_exits_2(tmp_path, run_dir, capsys, monkeypatch):
    def full(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("wavegms.engine.predict.save_mask_png", full)
    image = grey_png(tmp_path / "a.png")
    out = tmp_path / "out"
    assert predict(run_dir, image, out=out) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert f"skipped {image}: could not write its mask" in err[0] and "No space left" in err[0]
    assert err[1] == "wavegms predict: error: no mask written: every image failed (1, see above)"
    assert not out.exists()


def test_out_that_is_a_file_is_one_line(tmp_path, run_dir, capsys):
    a_file = tmp_path / "out"
    a_file.write_text("x")
    image = grey_png(tmp_path / "a.png")
    assert predict(run_dir, image, out=a_file) == 2
    assert f"{a_file} is a file" in one_line(capsys)


@pytest.mark.parametrize(
    ("damage", "expected"),
    [
        ("truncated", "is damaged or not a safetensors file"),
        ("empty", "is damaged or not a safetensors file"),
        ("pickle", "is damaged or not a safetensors file"),
        ("config list", "holds a JSON list, not an object"),
        ("config types", "image_size='64' has the wrong type"),
        ("config syntax", "is not valid JSON"),
    ],
)
def test_damaged_checkpoint_is_one_line_naming_the_file_and_leaves_no_out(
    tmp_path, run_dir, capsys, damage, expected
):
    weights, config = run_dir / "best" / WEIGHTS, run_dir / "best" / "config.json"
    if damage == "truncated":
        weights.write_bytes(weights.read_bytes()[:200])
    elif damage == "empty":
        weights.write_bytes(b"")
    elif damage == "pickle":
        weights.write_bytes(pickle.dumps({"weight": [1.0, 2.0]}))
    elif damage == "config list":
        config.write_text("[1, 2]")
    elif damage == "config types":
        config.write_text(
            config.read_text().replace(f'"image_size": {IMAGE_SIZE}', '"image_size": "64"')
        )
    else:
        config.write_text(config.read_text()[:-5])
    image = grey_png(tmp_path / "a.png")
    out = tmp_path / "out"
    assert predict(run_dir, image, out=out) == 2
    err = one_line(capsys)
    named = weights if "safetensors" in expected else config
    assert str(named) in err and expected in err
    assert not out.exists()  # failed before the first mask: no empty --out left behind
