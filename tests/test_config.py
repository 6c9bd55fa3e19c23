"""Training settings (``wavegms.engine.config``): a ``TrainConfig`` saved with a run loads back
equal; a bad settings file is one line naming the file and the value; presets; and the
settings a resumed run may change (``RESUMABLE``)."""

from __future__ import annotations

import dataclasses
import json
import re

import pytest

from wavegms.cli import main
from wavegms.engine.checkpoint import TRAIN_CONFIG, resolve_config
from wavegms.engine.config import RESUMABLE, TrainConfig, preset
from wavegms.engine.presets import PRESETS


def test_a_saved_config_loads_back_equal(tmp_path):
    config = preset(
        "busi",
        data_dir=str(tmp_path / "data"),
        epochs=7,
        synthetic_sizes=(3, 2, 1),
        taesd="madebyollin/taesd",
        notes={"why": "a test", "runs": [1, 2]},
    )
    path = tmp_path / TRAIN_CONFIG
    config.save(path)
    assert json.loads(path.read_text())["synthetic_sizes"] == [3, 2, 1]  # plain JSON
    loaded = TrainConfig.load(path)
    assert loaded == config and loaded.synthetic_sizes == (3, 2, 1)
    assert [p.name for p in tmp_path.iterdir()] == [TRAIN_CONFIG]  # no temporary file left


def test_missing_settings_take_their_defaults_and_unknown_ones_are_ignored(tmp_path):
    path = tmp_path / TRAIN_CONFIG
    path.write_text('{"epochs": 3, "a_setting_of_a_later_version": true}')
    assert TrainConfig.load(path) == TrainConfig(epochs=3)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ('{"lr": "fast"}', "lr='fast' has the wrong type (expected a number)"),
        ('{"epochs": 2.5}', "epochs=2.5 has the wrong type (expected an integer)"),
        ('{"augment": "yes"}', "augment='yes' has the wrong type (expected true or false)"),
        ('{"data_dir": 3}', "data_dir=3 has the wrong type (expected a string or null)"),
        ('{"synthetic_sizes": [4, "2", 2]}', "has the wrong type (expected a list of int)"),
        ('{"dataset": "imagenet"}', "Invalid dataset='imagenet': must be one of 'synthetic',"),
        ('{"synthetic_sizes": [4, 2]}', "Invalid synthetic_sizes=(4, 2): must be three positive"),
        ('{"val_fraction": 1.5}', "Invalid val_fraction=1.5: must be between 0 and 1."),
        ('{"image_size": 30}', "Invalid image_size=30: not divisible by 8"),
        ('{"dataset": "busi"}', "dataset 'busi' needs data_dir"),
    ],
)
def test_a_bad_setting_is_one_line_naming_the_file_and_the_value(tmp_path, content, expected):
    path = tmp_path / TRAIN_CONFIG
    path.write_text(content)
    with pytest.raises(ValueError) as e:
        TrainConfig.load(path)
    message = str(e.value)
    assert message.startswith(f"{path}: ") and expected in message and "\n" not in message


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


def test_a_preset_is_the_papers_settings_with_overrides():
    config = preset("busi", data_dir="data", epochs=50)
    assert (config.dataset, config.data_dir, config.epochs) == ("busi", "data", 50)
    assert (config.lr, config.batch_size, config.image_size) == (2e-3, 12, 224)  # the paper's
    assert preset("ham10000", data_dir="data").epochs == 300
    quick = preset("quick")
    assert {name: getattr(quick, name) for name in PRESETS["quick"]} == PRESETS["quick"]
    with pytest.raises(ValueError, match=re.escape("Invalid epochs=0: must be at least 1.")):
        preset("quick", epochs=0)


def test_an_unknown_preset_names_the_choices():
    expected = f"Unknown preset 'fast': choose one of {', '.join(PRESETS)}."
    with pytest.raises(ValueError, match=re.escape(expected)):
        preset("fast")
    assert set(PRESETS) == {"busi", "bus", "kvasir_instrument", "ham10000", "quick"}


def test_resumable_settings_never_change_what_is_trained():
    assert set(RESUMABLE) <= {setting.name for setting in dataclasses.fields(TrainConfig)}
    fixed = {"dataset", "split", "selection", "image_size", "batch_size", "lr", "weight_decay"}
    fixed |= {"warmup_epochs", "seed", "augment", "synthetic_kind", "synthetic_sizes"}
    assert not fixed & set(RESUMABLE)


@pytest.mark.parametrize("name", ["gradient_checkpointing", "compile"])
def test_a_resumed_run_may_change_how_its_steps_compute(tmp_path, name):
    # A run resumed on a smaller GPU must be able to turn on gradient checkpointing (and the
    # other settings that change how, not what, a step computes); lr still changes the maths.
    saved = preset("quick", image_size=32)
    saved.save(tmp_path / TRAIN_CONFIG)
    changed = saved.replace(**{name: not getattr(saved, name)})
    assert resolve_config(changed, tmp_path, resume=True) == changed
    with pytest.raises(ValueError, match=re.escape("Cannot change lr: 0.003 -> 0.001")):
        resolve_config(changed.replace(lr=1e-3), tmp_path, resume=True)


def test_a_resumed_run_takes_resumable_changes_only(tmp_path):
    saved = preset("quick", image_size=32)
    saved.save(tmp_path / TRAIN_CONFIG)  # a run started; no epoch finished yet
    changes = {
        "epochs": 9,
        "num_workers": 1,
        "threads": 1,
        "device": "cpu",
        "precision": "bf16",
        "channels_last": True,
        "taesd": "elsewhere/taesd",
        "data_dir": str(tmp_path),
        "notes": {"moved": "to a GPU"},
        "gradient_checkpointing": True,
        "compile": True,
    }
    assert set(changes) == set(RESUMABLE)
    changed = saved.replace(**changes)
    assert resolve_config(changed, tmp_path, resume=True) == changed
    assert resolve_config(None, tmp_path, resume=True) == saved
    expected = f"Cannot change lr: 0.003 -> 0.001, seed: 0 -> 1 when resuming {tmp_path}"
    with pytest.raises(ValueError, match=re.escape(expected)):
        resolve_config(changed.replace(lr=1e-3, seed=1), tmp_path, resume=True)
