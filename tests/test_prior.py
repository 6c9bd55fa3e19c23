"""The constant-mask baseline (wavegms.engine.prior) and where evaluate and predict show it."""

from __future__ import annotations

import json

import pytest
import torch
from runs import make_run

from wavegms.cli import main
from wavegms.course.samples import load_samples
from wavegms.engine.evaluate import evaluate
from wavegms.engine.metrics import dice_iou
from wavegms.engine.prior import constant_mask_prior, load_prior, prior_dice, save_prior
from wavegms.pretrained import list_pretrained, load_pretrained, pretrained_dir, resolve


def _blobs(n: int, size: int = 16, seed: int = 0) -> torch.Tensor:
    """Random rectangles, some images empty."""
    g = torch.Generator().manual_seed(seed)
    masks = torch.zeros(n, 1, size, size)
    for i in range(n):
        if torch.rand(1, generator=g) < 0.2:
            continue
        y, x = torch.randint(0, size - 4, (2,), generator=g).tolist()
        h, w = torch.randint(2, 8, (2,), generator=g).tolist()
        masks[i, 0, y : y + h, x : x + w] = 1
    return masks


def test_the_threshold_is_the_best_of_every_constant_mask():
    masks = _blobs(40)
    mean, threshold = constant_mask_prior(masks)
    assert mean.shape == (1, 16, 16) and torch.allclose(mean, masks.mean(0))
    candidates = [-1.0, *mean.unique().tolist()]
    scores = [
        dice_iou((mean > t).expand_as(masks), masks > 0.5)[0].mean().item() for t in candidates
    ]
    best = max(scores)
    assert prior_dice(mean, threshold, masks).mean().item() == pytest.approx(best, abs=1e-6)


def test_prior_round_trips_through_its_file_and_resizes(tmp_path):
    mean, threshold = constant_mask_prior(_blobs(30, size=32))
    save_prior(tmp_path, mean, threshold)
    loaded, t = load_prior(tmp_path)
    assert torch.equal(loaded, mean) and t == pytest.approx(threshold)
    assert load_prior(tmp_path, image_size=64)[0].shape == (1, 64, 64)


def test_evaluate_reports_the_baseline_beside_the_model(tmp_path, tiny_vae, capsys):
    run = make_run(tmp_path / "run", tiny_vae)
    summary = evaluate(run, out_dir=tmp_path / "e", device="cpu", tiny_vae=tiny_vae, progress=0)
    assert 0.0 <= summary["prior_dice_mean"] <= 1.0
    assert summary["prior_source"].startswith("the training split (8 masks)")
    args = ["evaluate", "--checkpoint", str(run), "--device", "cpu", "--no-progress"]
    assert main([*args, "--out", str(tmp_path / "cli")]) == 0
    out = capsys.readouterr().out
    assert "constant-mask baseline: Dice" in out
    # An untrained model is no better than the constant mask, and evaluate says so.
    assert "close to a constant mask" in out


def test_the_shipped_model_loads_segments_real_scans_and_carries_its_baseline(tmp_path, capsys):
    assert list_pretrained() == ["busi"]
    folder = pretrained_dir("busi")
    weights = folder / "diffusion_pytorch_model.safetensors"
    assert weights.stat().st_size < 12e6 and (folder / "README.md").is_file()
    mean, threshold = load_prior(folder, image_size=224)
    assert mean.shape == (1, 224, 224) and 0 <= threshold < 1
    model = load_pretrained("busi", device="cpu")
    assert not model.training and next(model.parameters()).dtype == torch.float32
    assert resolve(str(folder)) == folder
    with pytest.raises(FileNotFoundError, match="busi"):
        resolve("no_such_model")
    items = load_samples(image_size=224)[:2]
    probs = model.predict(torch.stack([i["image"] for i in items]))
    assert probs.shape == (2, 1, 224, 224) and probs.min() >= 0 and probs.max() <= 1

    from PIL import Image

    scans = tmp_path / "scans"
    scans.mkdir()
    for item in items:
        array = (item["image"][0] * 255).round().byte().numpy()
        Image.fromarray(array).save(scans / f"{item['name']}.png")
    cli = ["predict", "--pretrained", "busi", str(scans), "--out", str(tmp_path / "masks")]
    assert main([*cli, "--device", "cpu", "--no-progress"]) == 0
    assert sorted(p.name for p in (tmp_path / "masks").iterdir()) == sorted(
        f"{i['name']}.png" for i in items
    )
    assert "synthetic" not in capsys.readouterr().err
    card = json.loads((folder / "train_config.json").read_text())
    assert card["dataset"] == "busi" and card["image_size"] == 224
