"""Helpers that make small run folders and data folders for the evaluation/inference tests.

An untrained model is enough for file-contract tests: nothing here waits for training.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from wavegms import WaveGMS
from wavegms.data.synthetic import export_synthetic  # noqa: F401 - the tests import it from here
from wavegms.engine.checkpoint import TRAIN_CONFIG
from wavegms.engine.config import TrainConfig, preset

IMAGE_SIZE = 64


def untrained_model(tiny_vae) -> WaveGMS:  # noqa: ANN001
    """An untrained ``IMAGE_SIZE`` model in eval mode, seeded: the same weights every call."""
    torch.manual_seed(0)
    return WaveGMS(tiny_vae, image_size=IMAGE_SIZE).eval()


def make_run(run_dir: Path, tiny_vae, config: TrainConfig | None = None) -> Path:  # noqa: ANN001
    """``run_dir`` with ``best/`` (:func:`untrained_model`) and ``train_config.json``
    (default: the quick synthetic preset with 8/4/4 items)."""
    untrained_model(tiny_vae).save_pretrained(run_dir / "best")
    config = config or preset("quick", image_size=IMAGE_SIZE, synthetic_sizes=(8, 4, 4))
    config.save(run_dir / TRAIN_CONFIG)
    return run_dir


def make_prepared_dataset(
    data_dir: Path, dataset: str, sizes: dict[str, tuple[int, int]], classes: dict | None = None
) -> Path:
    """A prepared ``data_dir/<dataset>/{images,masks}/<name>.png`` layout (grey images of the
    given ``(H, W)`` with one bright square each; masks 0/255) and ``info.json`` classes."""
    root = data_dir / dataset
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    rng = np.random.default_rng(0)
    for name, (height, width) in sizes.items():
        image = rng.integers(0, 90, (height, width), dtype=np.uint8)
        mask = np.zeros((height, width), dtype=np.uint8)
        if (classes or {}).get(name) != "normal":
            mask[height // 4 : height // 2, width // 3 : width // 2] = 255
        image[mask > 0] = 200
        Image.fromarray(image).save(root / "images" / f"{name}.png")
        Image.fromarray(mask).save(root / "masks" / f"{name}.png")
    if classes:
        (root / "info.json").write_text(json.dumps({"dataset": dataset, "classes": classes}))
    return root
