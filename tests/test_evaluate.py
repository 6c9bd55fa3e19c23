"""`evaluate` writes the promised files with consistent numbers, in and across domains."""

from __future__ import annotations

import csv
import json
import math

import pytest
from PIL import Image
from runs import IMAGE_SIZE, make_prepared_dataset, make_run

from wavegms.engine.config import TrainConfig
from wavegms.engine.evaluate import evaluate

SUMMARY_KEYS = {
    "dice_mean", "dice_std", "iou_mean", "iou_std", "hd95_mean", "hd95_std", "dice_pooled",
    "n_images", "checkpoint", "trained_on", "evaluated_on", "split", "cross_domain",
    "selected_on", "image_size", "threshold",
}  # fmt: skip


def read_rows(path):  # noqa: ANN001, ANN201
    with open(path, newline="") as file:
        return list(csv.DictReader(file))


def test_synthetic_run_writes_summary_csv_and_cases(tmp_path, tiny_vae) -> None:
    run = make_run(tmp_path / "run", tiny_vae)
    out = tmp_path / "eval"
    summary = evaluate(
        run, out_dir=out, batch_size=3, device="cpu", tiny_vae=tiny_vae, progress=False
    )

    assert set(summary) >= SUMMARY_KEYS
    assert json.loads((out / "summary.json").read_text()) == summary
    assert summary["n_images"] == 4  # the quick preset's test set, regenerated
    assert summary["trained_on"] == summary["evaluated_on"] == "synthetic"
    assert summary["split"] == "test" and summary["cross_domain"] is False
    assert summary["image_size"] == IMAGE_SIZE and summary["threshold"] == 0.5
    assert summary["selected_on"] == "val"

    rows = read_rows(out / "per_image.csv")
    assert list(rows[0]) == ["name", "dice", "iou", "hd95", "gt_empty", "pred_empty"]
    assert len(rows) == 4 and len({row["name"] for row in rows}) == 4
    dice = [float(row["dice"]) for row in rows]
    hd = [float(row["hd95"]) for row in rows]
    assert summary["dice_mean"] == pytest.approx(sum(dice) / 4, abs=1e-5)
    assert all(0 <= d <= 1 for d in dice)
    assert all(0 <= h <= math.hypot(IMAGE_SIZE, IMAGE_SIZE) + 1e-3 for h in hd)
    assert {row["gt_empty"] for row in rows} == {"0"}  # every synthetic item has a lesion
    with Image.open(out / "cases.png") as figure:
        assert figure.format == "PNG" and figure.width > 200


@pytest.mark.parametrize("progress", [True, False])
def test_the_images_are_loaded_once_with_or_without_a_progress_bar(
    tmp_path, tiny_vae, monkeypatch, progress
) -> None:
    """A progress bar wrapped around the loader (tqdm.auto) made a second, unused iterator of
    it at once: with workers, a second set of worker processes."""
    from torch.utils.data import DataLoader

    import wavegms.engine.evaluate as evaluate_module

    # A bar even though pytest's output is no terminal (where evaluate would draw none).
    monkeypatch.setattr(evaluate_module, "show_bars", lambda requested: requested)
    run = make_run(tmp_path / "run", tiny_vae)
    iterators = []
    original = DataLoader.__iter__
    monkeypatch.setattr(DataLoader, "__iter__", lambda self: iterators.append(1) or original(self))
    evaluate(run, out_dir=tmp_path / "eval", device="cpu", tiny_vae=tiny_vae, progress=progress)
    assert len(iterators) == 1


def test_cross_domain_uses_all_usable_items_of_the_other_dataset(tmp_path, tiny_vae) -> None:
    data = tmp_path / "data"
    make_prepared_dataset(data, "bus", {"000001": (70, 90)})
    classes = {"benign_1": "benign", "malignant_1": "malignant", "normal_1": "normal"}
    sizes = {"benign_1": (80, 100), "malignant_1": (64, 64), "normal_1": (50, 70)}
    make_prepared_dataset(data, "busi", sizes, classes)
    run = make_run(
        tmp_path / "run", tiny_vae, TrainConfig(dataset="bus", data_dir=str(data), image_size=64)
    )

    out = tmp_path / "eval"
    summary = evaluate(
        run, dataset="busi", data_dir=data, out_dir=out, tiny_vae=tiny_vae, progress=False
    )
    assert summary["cross_domain"] is True
    assert summary["trained_on"] == "bus" and summary["evaluated_on"] == "busi"
    assert "trained on bus, evaluated on busi" in summary["description"]
    assert summary["split"] == "all"
    # BUSI "normal" items (empty masks) are excluded, as in the paper protocol.
    names = [row["name"] for row in read_rows(out / "per_image.csv")]
    assert names == ["benign_1", "malignant_1"] and summary["n_images"] == 2
    assert (out / "cases.png").is_file()


def test_own_real_dataset_uses_the_saved_test_split(tmp_path, tiny_vae) -> None:
    from wavegms.data import Splits

    data = tmp_path / "data"
    make_prepared_dataset(data, "bus", {f"00000{i}": (72, 64 + 8 * i) for i in range(1, 6)})
    run = make_run(
        tmp_path / "run", tiny_vae, TrainConfig(dataset="bus", data_dir=str(data), image_size=64)
    )
    Splits(["000001", "000002"], ["000003"], ["000004", "000005"], "random", 0).save(
        run / "splits.json"
    )
    summary = evaluate(run, out_dir=tmp_path / "eval", tiny_vae=tiny_vae, progress=False)
    rows = read_rows(tmp_path / "eval" / "per_image.csv")
    assert [row["name"] for row in rows] == ["000004", "000005"]
    assert summary["cross_domain"] is False and summary["evaluated_on"] == "bus"


def test_bad_arguments_fail_with_clear_errors(tmp_path, tiny_vae) -> None:
    run = make_run(tmp_path / "run", tiny_vae)
    with pytest.raises(ValueError, match="Unknown dataset 'busy'"):
        evaluate(run, dataset="busy", out_dir=tmp_path / "e", tiny_vae=tiny_vae)
    with pytest.raises(ValueError, match="python -m data_download bus"):
        evaluate(run, dataset="bus", out_dir=tmp_path / "e", tiny_vae=tiny_vae)
    with pytest.raises(FileNotFoundError, match="python -m data_download bus"):
        evaluate(run, dataset="bus", data_dir=tmp_path, out_dir=tmp_path / "e", tiny_vae=tiny_vae)
    with pytest.raises(ValueError, match="multiple of 8"):
        evaluate(run, image_size=60, out_dir=tmp_path / "e", tiny_vae=tiny_vae)
    with pytest.raises(FileNotFoundError, match="No Wave-GMS checkpoint"):
        evaluate(tmp_path / "nothing", out_dir=tmp_path / "e", tiny_vae=tiny_vae)
    assert not (tmp_path / "e").exists()  # nothing half-written


def test_cases_keep_the_best_and_worst_across_batches() -> None:
    import torch

    from wavegms.engine.evaluate import _Extremes

    extremes = _Extremes(2)
    dice_per_batch = [[0.5, 0.9, 0.1], [0.7, 0.95], [0.2, 0.05, 0.9]]
    for b, dices in enumerate(dice_per_batch):
        n = len(dices)
        batch = {
            "name": [f"b{b}_{j}" for j in range(n)],
            "image": torch.zeros(n, 3, 8, 8),
            "mask": torch.zeros(n, 1, 8, 8),
        }
        metrics = {"dice": torch.tensor(dices), "hd95": torch.arange(n, dtype=torch.float)}
        extremes.update(batch, torch.zeros(n, 1, 8, 8, dtype=torch.bool), metrics)
    names = [case["name"] for _, case in extremes.cases]
    # Best first: 0.95, then of the two 0.9 the lower HD95 (b0_1: 1 < b2_2: 2); worst last.
    assert names == ["b1_1", "b0_1", "b0_2", "b2_1"]
    assert extremes.figure("t").axes[0].get_title() == "best: b1_1"
