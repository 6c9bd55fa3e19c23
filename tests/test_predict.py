"""`predict_files` / `wavegms predict`: one binary mask per readable image, at its own size."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from PIL import Image
from runs import IMAGE_SIZE, make_run, untrained_model

from wavegms import WaveGMS
from wavegms.cli import main
from wavegms.data import load_image
from wavegms.engine.checkpoint import load_model
from wavegms.engine.predict import PredictReport, predict_files, to_model_input


@pytest.fixture
def model(tiny_vae) -> WaveGMS:
    return untrained_model(tiny_vae)


@pytest.fixture
def inputs(tmp_path):  # noqa: ANN201 - {stem: path} of images of odd sizes and formats
    folder = tmp_path / "in"
    (folder / "more").mkdir(parents=True)
    rng = np.random.default_rng(0)
    files = {
        "grey": (folder / "grey.png", Image.fromarray(rng.integers(0, 255, (97, 131), np.uint8))),
        "rgba": (
            folder / "rgba.png",
            Image.fromarray(rng.integers(0, 255, (50, 40, 4), np.uint8), "RGBA"),
        ),
        "photo": (
            folder / "photo.jpg",
            Image.fromarray(rng.integers(0, 255, (75, 60, 3), np.uint8)),
        ),
        "deep": (
            folder / "deep.png",
            Image.fromarray(rng.integers(0, 65535, (64, 64), np.uint16)),  # 16-bit grey
        ),
        # Same stem as in/grey.png, in a folder given as an argument.
        "grey-2": (folder / "more" / "grey.png", Image.fromarray(np.zeros((33, 47), np.uint8))),
    }
    for path, image in files.values():
        image.save(path)
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    return {stem: path for stem, (path, _) in files.items()}


def test_masks_at_original_size_and_failures_reported(tmp_path, model, inputs) -> None:
    folder = tmp_path / "in"
    paths = [inputs["grey"], inputs["rgba"], inputs["photo"], inputs["deep"]]
    paths += [folder / "broken.png", folder / "missing.png", folder / "more"]
    out = tmp_path / "out"
    report = predict_files(
        model, paths, out, batch_size=3, save_probs=True, save_overlay=True, progress=False
    )

    assert [p.name for p, _ in report.failed] == ["broken.png", "missing.png"]
    assert all(reason for _, reason in report.failed)
    assert report.renamed == [(inputs["grey-2"], out / "grey-2.png")]
    assert sorted(p.stem for p in report.written) == sorted(inputs)
    for stem, source in inputs.items():
        with Image.open(source) as original:
            size = original.size
        with Image.open(out / f"{stem}.png") as mask:
            assert mask.mode == "L" and mask.size == size, stem
            assert set(np.unique(np.asarray(mask))) <= {0, 255}, stem
        with Image.open(out / f"{stem}_prob.png") as prob:
            assert prob.mode == "L" and prob.size == size
            # The mask is the thresholded probability map (up to 8-bit rounding at 0.5).
            prob_array, mask_array = np.asarray(prob), np.asarray(Image.open(out / f"{stem}.png"))
            decided = np.abs(prob_array.astype(int) - 127.5) > 1
            assert np.array_equal((prob_array > 127.5)[decided], (mask_array == 255)[decided])
        with Image.open(out / f"{stem}_overlay.png") as tinted:
            assert tinted.mode == "RGB" and tinted.size == size


def test_mask_equals_model_prediction_at_model_size(tmp_path, model, inputs) -> None:
    """A 64 x 64 image needs no resizing: its mask is exactly predict(image) > 0.5."""
    report = predict_files(model, [inputs["deep"]], tmp_path / "out", progress=False)
    expected = model.predict(to_model_input(load_image(inputs["deep"]), IMAGE_SIZE)[None]) > 0.5
    written = np.asarray(Image.open(report.written[0])) == 255
    assert np.array_equal(written, expected[0, 0].numpy())
    assert 0 < written.mean() < 1 or written.all() or not written.any()


def test_cli_predict_exit_codes_and_messages(tmp_path, tiny_vae, inputs, capsys) -> None:
    run = make_run(tmp_path / "run", tiny_vae)
    common = ["predict", "--checkpoint", str(run), "--device", "cpu", "--no-progress"]
    good = [str(inputs["grey"]), str(inputs["photo"])]

    assert main([*common, *good, "--out", str(tmp_path / "a")]) == 0
    out = capsys.readouterr().out  # the quick run's model: a note points to the real one
    assert "trained on synthetic images" in out and "--pretrained busi" in out
    assert {p.name for p in (tmp_path / "a").iterdir()} == {"grey.png", "photo.png"}

    broken = str(tmp_path / "in" / "broken.png")
    assert main([*common, *good, broken, "--out", str(tmp_path / "b")]) == 1
    err = [line for line in capsys.readouterr().err.splitlines() if "wavegms" in line]
    assert len(err) == 1 and "broken.png" in err[0] and "skipped" in err[0]
    assert (tmp_path / "b" / "grey.png").is_file()

    assert main([*common, broken, "--out", str(tmp_path / "c")]) == 2
    err = capsys.readouterr().err
    assert "broken.png" in err and "no mask written: every image failed" in err


def test_bad_arguments(tmp_path, model, inputs) -> None:
    with pytest.raises(ValueError, match="threshold"):
        predict_files(model, [inputs["grey"]], tmp_path / "o", threshold=1.5)
    with pytest.raises(ValueError, match="batch_size"):
        predict_files(model, [inputs["grey"]], tmp_path / "o", batch_size=0)
    with pytest.raises(FileNotFoundError, match="No input images"):
        predict_files(model, [], tmp_path / "o")


def test_models_loaded_for_mixed_precision_are_prepared_for_it(tmp_path, tiny_vae) -> None:
    """predict_files with bf16 loads the model channels-last with bf16 weights; masks agree."""
    run = make_run(tmp_path / "run", tiny_vae)
    plain = load_model(run, device="cpu", tiny_vae=copy.deepcopy(tiny_vae))
    fast = copy.deepcopy(plain).prepare_for_inference("bf16")
    assert fast.dtype == torch.bfloat16 and fast.tiny_vae.dtype == torch.bfloat16
    cl = torch.channels_last
    assert fast.encoder.extractors[0].conv_in.weight.is_contiguous(memory_format=cl)
    assert fast.tiny_vae.decoder.layers[0].weight.is_contiguous(memory_format=cl)
    assert copy.deepcopy(plain).prepare_for_inference("fp32").dtype == torch.float32

    image = tmp_path / "scan.png"
    Image.fromarray(np.random.default_rng(2).integers(0, 255, (64, 64, 3), np.uint8)).save(image)
    expected = plain.predict(to_model_input(load_image(image), IMAGE_SIZE)[None])
    for precision, tolerance in (("fp32", 0.005), ("bf16", 0.03)):
        report = predict_files(
            run,
            [image],
            tmp_path / precision,
            precision=precision,
            save_probs=True,
            progress=False,
            tiny_vae=copy.deepcopy(tiny_vae),
        )
        prob = np.asarray(Image.open(tmp_path / precision / "scan_prob.png")) / 255
        assert np.abs(prob - expected[0, 0].numpy()).mean() < tolerance
        assert report.written == [tmp_path / precision / "scan.png"]


def test_the_report_counts_in_words_one_mask_or_several(tmp_path):
    one = PredictReport(written=[tmp_path / "a.png"])
    assert str(one) == "1 mask written, 0 images failed"
    two = PredictReport(written=[tmp_path / "a.png"] * 2, failed=[(tmp_path / "b.png", "?")])
    assert str(two) == "2 masks written, 1 image failed"
