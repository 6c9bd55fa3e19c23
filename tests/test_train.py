"""The training engine end to end on CPU, and the `wavegms train` command line."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from runs import make_prepared_dataset
from torch.utils.data import DataLoader

from wavegms import WaveGMS
from wavegms.cli import main
from wavegms.data import SegmentationDataset, Splits
from wavegms.engine.checkpoint import load_model, load_training_state
from wavegms.engine.config import TrainConfig, preset
from wavegms.engine.curves import plot_training_curves
from wavegms.engine.evaluate import evaluate
from wavegms.engine.metrics import dice_iou
from wavegms.engine.run_data import build_datasets
from wavegms.engine.train import TrainResult, train

RECORD_KEYS = {"epoch", "lr", "train_loss", "train_latent", "train_mask", "train_align"}


def val_dice(model: WaveGMS, dataset) -> float:  # noqa: ANN001
    batch = next(iter(DataLoader(dataset, batch_size=len(dataset))))
    dice, _ = dice_iou(model.predict(batch["image"]) > 0.5, batch["mask"] > 0.5)
    return dice.mean().item()


def tiny_config(**overrides) -> TrainConfig:
    settings = {"image_size": 32, "synthetic_sizes": (4, 2, 2), "epochs": 1, "batch_size": 2}
    return preset("quick", device="cpu", **{**settings, **overrides})


@dataclass
class QuickRun:
    """The quick preset trained once, and what the tests compare it with."""

    config: TrainConfig
    datasets: dict
    untrained_dice: float  # val Dice of the model training starts from
    result: TrainResult
    seen: list  # (epoch, model.training, image_size, record epoch) per on_epoch_end call

    @property
    def run_dir(self) -> Path:
        return self.result.run_dir


@pytest.fixture(scope="module")
def quick_run(tiny_vae, tmp_path_factory) -> QuickRun:
    """The quick preset as the course trains it: 64 px synthetic ultrasound, 80 steps. Measured
    (seed 0): best val Dice 0.51, test Dice 0.49, the best constant mask 0.115 on test. Trained
    once for every test that reads it."""
    config = preset("quick", device="cpu")
    datasets, _ = build_datasets(config)
    torch.manual_seed(config.seed)  # train() starts from exactly this model
    untrained = val_dice(WaveGMS(tiny_vae, image_size=64), datasets["val"])
    seen = []

    def on_epoch_end(epoch, model, record):  # noqa: ANN001
        seen.append((epoch, model.training, (model.config.image_size), record["epoch"]))

    run_dir = tmp_path_factory.mktemp("quick") / "run"
    result = train(config, run_dir, progress=False, callbacks=[on_epoch_end], tiny_vae=tiny_vae)
    return QuickRun(config, datasets, untrained, result, seen)


def test_training_learns_far_beyond_the_untrained_model(quick_run):
    untrained, result = quick_run.untrained_dice, quick_run.result
    assert result.best_dice > untrained + 0.25, (untrained, result.best_dice)
    assert result.selected_on == "val"


def test_callbacks_see_every_epoch_with_the_model_in_eval_mode(quick_run):
    epochs = quick_run.config.epochs
    assert quick_run.seen == [(e, False, 64, e) for e in range(1, epochs + 1)]


def test_the_model_beats_the_best_constant_mask_on_test(quick_run, tiny_vae, tmp_path):
    run_dir = quick_run.run_dir
    summary = evaluate(run_dir, out_dir=tmp_path / "eval", tiny_vae=tiny_vae, progress=False)
    assert summary["n_images"] == quick_run.config.synthetic_sizes[2]
    assert summary["prior_dice_mean"] < 0.35, summary
    assert summary["dice_mean"] >= summary["prior_dice_mean"] + 0.25, summary


def test_the_masks_follow_each_image(quick_run, tiny_vae):
    # A location prior paints one mask for all images: the model's masks differ between images
    # far more than they differ from each image's own mask.
    test = quick_run.datasets["test"]
    images = torch.stack([test[i]["image"] for i in range(len(test))])
    masks = torch.stack([test[i]["mask"] for i in range(len(test))])
    with torch.no_grad():
        predicted = (load_model(quick_run.run_dir, "cpu", tiny_vae).predict(images) > 0.5).float()
    own = dice_iou(predicted, masks)[0].mean()
    i, j = torch.triu_indices(len(test), len(test), offset=1)
    between = dice_iou(predicted[i], predicted[j])[0].mean()
    assert between < own - 0.2, (between, own)


def test_best_is_the_model_that_scored_best_dice(quick_run, tiny_vae):
    result = quick_run.result
    best = load_model(result.best_checkpoint, device="cpu", tiny_vae=tiny_vae)
    assert val_dice(best, quick_run.datasets["val"]) == pytest.approx(result.best_dice, abs=1e-6)
    metrics = json.loads((quick_run.run_dir / "best" / "metrics.json").read_text())
    assert metrics["epoch"] == result.best_epoch and metrics["selected_on"] == "val"


def test_the_run_folder_keeps_the_resolved_config_and_the_splits(quick_run):
    config, run_dir = quick_run.config, quick_run.run_dir
    assert TrainConfig.load(run_dir / "train_config.json") == config
    splits = Splits.load(run_dir / "splits.json")
    assert (len(splits.train), len(splits.val), len(splits.test)) == config.synthetic_sizes


def test_the_log_has_one_record_per_epoch_and_the_loss_falls(quick_run):
    result, epochs = quick_run.result, quick_run.config.epochs
    lines = (quick_run.run_dir / "log.jsonl").read_text().splitlines()
    log = [json.loads(line) for line in lines]
    assert log == result.history and [r["epoch"] for r in log] == list(range(1, epochs + 1))
    assert all(set(r) >= RECORD_KEYS and r["val_dice"] is not None for r in log)
    assert log[0]["lr"] > 0 and log[0]["train_loss"] > log[-1]["train_loss"]
    assert (quick_run.run_dir / "curves.png").read_bytes()[:4] == b"\x89PNG"


def test_last_holds_the_final_epoch_and_its_training_state(quick_run):
    run_dir, result = quick_run.run_dir, quick_run.result
    state = load_training_state(run_dir / "last" / "training_state.pt")
    assert state["epoch"] == quick_run.config.epochs and state["best"]["epoch"] == result.best_epoch
    assert {p.name for p in (run_dir / "last").iterdir()} >= {
        "config.json",
        "diffusion_pytorch_model.safetensors",
        "metrics.json",
        "training_state.pt",
    }


def test_mixed_precision_channels_last_and_compile_fallback(tiny_vae, tmp_path, monkeypatch):
    # A torch.compile that fails on first use (as without a C compiler): training goes on eagerly.
    def broken_compile(module):  # noqa: ANN001
        def fail(*args, **kwargs):
            raise RuntimeError("no C compiler")

        fail._orig_mod = module
        return fail

    monkeypatch.setattr(torch, "compile", broken_compile)
    config = tiny_config(precision="bf16", channels_last=True, compile=True, val_every=5)
    with pytest.warns(UserWarning, match="torch.compile failed"):
        result = train(config, tmp_path / "run", progress=False, tiny_vae=tiny_vae)
    # The model converted its own copy of TAESD: the shared one is as it was.
    assert all(p.is_contiguous() and p.dtype == torch.float32 for p in tiny_vae.parameters())
    record = result.history[0]
    assert torch.isfinite(torch.tensor(record["train_loss"]))
    assert record["val_dice"] is not None  # the last epoch is always validated
    last = WaveGMS.from_pretrained(tmp_path / "run" / "last", tiny_vae=tiny_vae)
    assert last.config.image_size == 32


def write_busi_like(data_dir):  # noqa: ANN001, ANN201
    names = [f"benign_{i}" for i in range(1, 7)] + [f"malignant_{i}" for i in range(1, 5)]
    classes = {n: n.split("_")[0] for n in names}
    make_prepared_dataset(data_dir, "busi", dict.fromkeys(names, (40, 48)), classes)
    gms = data_dir / "splits" / "gms" / "busi.json"
    gms.parent.mkdir(parents=True)
    gms.write_text(
        json.dumps({"train": names[:3] + names[6:9] + names[3:5], "test": [names[5], names[9]]})
    )


def test_build_datasets_for_a_prepared_dataset(tmp_path):
    write_busi_like(tmp_path)
    config = preset("busi", data_dir=str(tmp_path), image_size=32)
    datasets, splits = build_datasets(config)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (7, 1, 2)
    assert splits.selects_on == "val" and splits.protocol == "gms"
    assert all(isinstance(d, SegmentationDataset) for d in datasets.values())
    assert datasets["train"][0]["image"].shape == (3, 32, 32)
    # The paper protocol trains on all of GMS train and selects on test.
    _, paper = build_datasets(config.replace(selection="test"))
    assert (len(paper.train), len(paper.val), paper.selects_on) == (8, 0, "test")
    # A run folder's saved splits win over the configuration.
    splits.save(tmp_path / "run" / "splits.json")
    _, again = build_datasets(config.replace(seed=1), tmp_path / "run")
    assert again == splits


def test_selecting_on_test_is_labelled(tiny_vae, tmp_path):
    write_busi_like(tmp_path)
    config = preset("busi", data_dir=str(tmp_path), image_size=32, epochs=1, batch_size=4)
    config = config.replace(selection="test", device="cpu", num_workers=0)
    with pytest.warns(UserWarning, match="TEST split"):
        result = train(config, tmp_path / "run", progress=False, tiny_vae=tiny_vae)
    assert result.selected_on == "test" and result.best_epoch == 1
    record = result.history[0]
    assert record["selected_on"] == "test" and "test_dice" in record and "val_dice" not in record
    metrics = json.loads((tmp_path / "run" / "best" / "metrics.json").read_text())
    assert metrics["selected_on"] == "test" and "optimistic" in metrics["warning"]


# ---- the command line ---------------------------------------------------------------------------


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:  # noqa: ANN001
    code = main(["train", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_cli_flags_override_the_preset(tmp_path, capsys):
    code, out, _ = run_cli(
        capsys, "--out", str(tmp_path / "r"), "--epochs", "3", "--lr", "1e-3", "--no-augment",
        "--synthetic-sizes", "5", "6", "7", "--print-config",
    )  # fmt: skip
    assert code == 0
    config = TrainConfig(**json.loads(out))
    expected = preset("quick", epochs=3, lr=1e-3, augment=False, synthetic_sizes=(5, 6, 7))
    assert config.replace(notes={}) == expected
    assert config.notes == {"preset": "quick"}
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--image-size", "30"], "image_size=30"),
        (["--batch-size", "0"], "batch_size=0"),
        (["--preset", "busi"], "python -m data_download busi --root DATA_DIR"),
        (["--preset", "busi", "--data", "{tmp}/nothing"], "python -m data_download busi --root"),
        (["--resume"], "No run to resume"),
    ],
)
def test_cli_errors_are_one_clear_line(tmp_path, capsys, argv, message):
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    code, _, err = run_cli(capsys, "--out", str(tmp_path / "run"), *argv)
    assert code == 2
    assert message in err
    assert "Traceback" not in err
    assert not (tmp_path / "run").exists(), "a failed start must not create the run folder"


def test_cli_trains_refuses_to_overwrite_and_resumes(tmp_path, capsys):
    run_dir = str(tmp_path / "run")
    small = ["--image-size", "32", "--synthetic-sizes", "4", "2", "2", "--batch-size", "2"]
    code, out, err = run_cli(capsys, "--out", run_dir, "--epochs", "1", *small, "--no-progress")
    assert code == 0, err
    assert "epoch 1/1" in out

    code, _, err = run_cli(capsys, "--out", run_dir, "--epochs", "1", *small)
    assert code == 2 and "already holds a training run" in err and "--resume" in err

    code, _, err = run_cli(capsys, "--out", run_dir, "--resume", "--lr", "1e-3")
    assert code == 2 and "Cannot change lr" in err

    code, out, err = run_cli(capsys, "--out", run_dir, "--resume", "--epochs", "2", "--no-progress")
    assert code == 0, err
    assert "resuming from epoch 1" in out and "epoch 2/2" in out
    log = (tmp_path / "run" / "log.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in log] == [1, 2]
    assert TrainConfig.load(tmp_path / "run" / "train_config.json").epochs == 2


def test_training_curves_figure(tmp_path):
    losses = {"train_loss": 3.0, "train_latent": 1.5, "train_mask": 1.0, "train_align": 0.5}
    records = [
        {"epoch": 1, **losses, "val_dice": None},
        {"epoch": 2, **losses, "val_dice": 0.4},
        {"epoch": 3, **losses, "val_dice": 0.7},
        {"epoch": 4, **losses, "val_dice": 0.6},
    ]
    figure = plot_training_curves(records, tmp_path / "curves.png")
    loss_ax, dice_ax = figure.axes
    assert len(loss_ax.get_lines()) == 4 and loss_ax.get_yscale() == "log"
    validation, best = dice_ax.get_lines()
    assert list(validation.get_xdata()) == [2, 3, 4], "epochs without validation are skipped"
    assert (list(best.get_xdata()), list(best.get_ydata())) == ([3], [0.7])
    assert (tmp_path / "curves.png").read_bytes()[:4] == b"\x89PNG"
    assert plot_training_curves(records[:1]).axes[1].get_lines() == []  # nothing validated yet
