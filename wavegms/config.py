"""Training configuration: one dataclass, the paper's presets, and a CPU ``quick`` preset.

Every field can be overridden from Python (``TrainConfig(**overrides)`` or
``preset("busi", epochs=50)``) and from the command line (``wavegms train --epochs 50``); the
resolved configuration is saved with each run as ``train_config.json``.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DATASETS = ("busi", "bus", "kvasir_instrument", "ham10000")
SOURCES = ("synthetic", *DATASETS)
PAPER_SEED = 2333


@dataclass
class TrainConfig:
    """Everything that defines a training run (SPEC 3 defaults)."""

    dataset: str = "synthetic"  # "synthetic" or one of DATASETS
    data_dir: str | None = None  # DATA_DIR holding prepared <dataset>/ folders
    split: str = "gms"  # "gms" (the GMS lists; val carved from train) or "random"
    val_fraction: float = 0.1
    test_fraction: float = 0.2  # "random" split only
    selection: str = "val"  # pick `best` on "val"; "test" reproduces the paper (inflated)
    image_size: int = 224
    epochs: int = 1000
    batch_size: int = 12
    lr: float = 2e-3
    weight_decay: float = 0.01
    warmup_epochs: int = 5
    seed: int = PAPER_SEED
    augment: bool = True
    precision: str = "fp32"  # "fp32", "bf16", "fp16" or "auto" (fastest supported)
    channels_last: bool = False
    compile: bool = False
    gradient_checkpointing: bool = False  # recompute TAESD's decoder in backward: less peak memory
    val_every: int = 1
    num_workers: int = 2
    device: str = "auto"
    taesd: str | None = None  # TAESD hub id or folder; None: $WAVEGMS_TAESD or the hub
    synthetic_kind: str = "ultrasound"  # "ultrasound", "endoscopy" or "mixed"
    synthetic_sizes: tuple[int, int, int] = (96, 24, 24)  # train, val, test items
    notes: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.synthetic_sizes = tuple(self.synthetic_sizes)
        self.validate()

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first invalid value and what is allowed."""
        checks = [
            (self.dataset in SOURCES, "dataset", f"one of {', '.join(SOURCES)}"),
            (self.split in ("gms", "random"), "split", "'gms' or 'random'"),
            (self.selection in ("val", "test"), "selection", "'val' or 'test'"),
            (
                self.image_size > 0 and self.image_size % 8 == 0,
                "image_size",
                "a positive multiple of 8 (TAESD works at 1/8 resolution), e.g. 224",
            ),
            (self.epochs >= 1, "epochs", "at least 1"),
            (self.batch_size >= 1, "batch_size", "at least 1"),
            (self.lr > 0, "lr", "positive"),
            (self.warmup_epochs >= 0, "warmup_epochs", "0 or more"),
            (0 < self.val_fraction < 1, "val_fraction", "between 0 and 1"),
            (0 < self.test_fraction < 1, "test_fraction", "between 0 and 1"),
            (
                self.precision in ("fp32", "bf16", "fp16", "auto"),
                "precision",
                "'fp32', 'bf16', 'fp16' or 'auto'",
            ),
            (self.val_every >= 1, "val_every", "at least 1"),
            (self.num_workers >= 0, "num_workers", "0 or more"),
            (
                self.synthetic_kind in ("ultrasound", "endoscopy", "mixed"),
                "synthetic_kind",
                "'ultrasound', 'endoscopy' or 'mixed'",
            ),
            (
                len(self.synthetic_sizes) == 3 and min(self.synthetic_sizes) >= 1,
                "synthetic_sizes",
                "three positive counts (train, val, test)",
            ),
        ]
        for ok, name, allowed in checks:
            if not ok:
                raise ValueError(f"Invalid {name}={getattr(self, name)!r}: must be {allowed}.")
        if self.dataset != "synthetic" and not self.data_dir:
            raise ValueError(
                f"dataset {self.dataset!r} needs data_dir (the folder holding {self.dataset}/). "
                f"Prepare it with: python -m data_download {self.dataset} --root DATA_DIR"
            )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def save(self, path: str | Path) -> None:
        from .checkpoint import atomic_write_text

        atomic_write_text(Path(path), json.dumps(self.to_dict(), indent=2))

    @classmethod
    def load(cls, path: str | Path) -> TrainConfig:
        values = json.loads(Path(path).read_text())
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})

    def replace(self, **overrides: Any) -> TrainConfig:
        return dataclasses.replace(self, **overrides)


# The paper's settings (SPEC 3); HAM10000 is 10x larger, hence fewer epochs.
PRESETS: dict[str, dict[str, Any]] = {
    "busi": {"dataset": "busi", "epochs": 1000},
    "bus": {"dataset": "bus", "epochs": 1000},
    "kvasir_instrument": {"dataset": "kvasir_instrument", "epochs": 1000},
    "ham10000": {"dataset": "ham10000", "epochs": 300},
    # A few minutes on a laptop CPU: small synthetic ultrasound images, a short schedule.
    "quick": {
        "dataset": "synthetic",
        "image_size": 64,
        "epochs": 8,
        "batch_size": 8,
        "warmup_epochs": 1,
        "synthetic_sizes": (64, 16, 16),
        "num_workers": 0,
        "seed": 0,
    },
}


def preset(name: str, **overrides: Any) -> TrainConfig:
    """The configuration of preset ``name`` with ``overrides`` applied."""
    if name not in PRESETS:
        raise ValueError(f"Unknown preset {name!r}: choose one of {', '.join(PRESETS)}.")
    return TrainConfig(**{**PRESETS[name], **overrides})
