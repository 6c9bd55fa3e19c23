"""Training configuration: one dataclass, the paper's presets, and a CPU ``quick`` preset.

Every field can be overridden from Python (``TrainConfig(**overrides)`` or
``preset("busi", epochs=50)``) and from the command line (``wavegms train --epochs 50``: the
flags are built from the fields below, their ``help`` and their ``choices``). The resolved
configuration is saved with each run as ``train_config.json``. Defaults are the paper's
(docs/paper_map.md, "Training").
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..data.layout import DATASETS
from ..data.splits import PROTOCOLS, SELECTIONS
from ..data.synthetic import KINDS
from ..tiny_vae import check_image_size
from ..utils.atomic import atomic_write_json
from ..utils.device import PRECISIONS
from ..utils.jsonfile import load_dataclass
from .presets import PAPER_SEED, PRESETS

SOURCES = ("synthetic", *DATASETS)
# Settings a resumed run may change: extending the schedule, or moving to another machine (whose
# fastest precision and memory format may differ: a run of the course trained on a T4 in fp16
# and channels-last is evaluated on a CPU in fp32), and how, not what, each step computes: a
# run resumed on a smaller GPU can turn on gradient checkpointing instead of running out of
# memory.
RESUMABLE = (
    "epochs",
    "num_workers",
    "threads",
    "device",
    "precision",
    "channels_last",
    "gradient_checkpointing",
    "compile",
    "taesd",
    "data_dir",
    "notes",
)


def _setting(default: Any, help: str, **cli: Any) -> Any:  # noqa: A002 - argparse's word
    """A field with its command-line ``help`` (and e.g. ``choices``, ``flag``, ``metavar``)."""
    factory = {"default_factory": lambda: dict(default)} if isinstance(default, dict) else {}
    value = {} if factory else {"default": default}
    return field(**value, **factory, metadata={"help": help, **cli})


@dataclass
class TrainConfig:
    """Everything that defines a training run."""

    dataset: str = _setting("synthetic", "the data to train on", choices=SOURCES)
    data_dir: str | None = _setting(
        None,
        "folder holding the prepared <dataset>/ folders "
        "(python -m data_download <dataset> --root DATA_DIR)",
        flag="--data",
        metavar="DATA_DIR",
    )
    split: str = _setting(
        "gms", "gms: the published lists (val carved from train); random", choices=PROTOCOLS
    )
    val_fraction: float = _setting(0.1, "share of train for validation")
    test_fraction: float = _setting(0.2, "test share (--split random)")
    selection: str = _setting(
        "val",
        "split that picks best/; test: the paper's protocol (all of train is trained on, best/ "
        "is picked on test, so its test scores are optimistic)",
        choices=SELECTIONS,
    )
    image_size: int = _setting(224, "square input side, multiple of 8")
    epochs: int = _setting(1000, "epochs in all (with --resume: extend a run)")
    batch_size: int = _setting(12, "global batch size (paper: 12)")
    lr: float = _setting(2e-3, "peak AdamW learning rate (paper: 2e-3)")
    weight_decay: float = _setting(0.01, "AdamW weight decay")
    warmup_epochs: int = _setting(5, "linear warm-up epochs")
    seed: int = _setting(PAPER_SEED, "seeds initialisation, splits and every epoch")
    augment: bool = _setting(True, "train-time augmentation (docs/paper_map.md, Training)")
    precision: str = _setting(
        "fp32",
        "autocast precision; fp16 uses a gradient scaler; auto: bf16 where fast, else fp16 "
        "(GPU) or fp32",
        choices=PRECISIONS,
    )
    channels_last: bool = _setting(False, "channels-last memory format (faster convolutions)")
    compile: bool = _setting(False, "torch.compile the model (falls back to eager if it fails)")
    gradient_checkpointing: bool = _setting(
        False,
        "recompute TAESD's decoder, one head at a time, in the backward pass: less peak memory "
        "(larger batches on small GPUs) for ~20%% more time per step",
    )
    val_every: int = _setting(1, "validate every N epochs (and the last)")
    num_workers: int | None = _setting(
        None,
        "data-loading processes (default: none on a CPU, where they would take cores from "
        "training; up to 4 beside a GPU)",
        type=int,
        metavar="N",
    )
    threads: int | None = _setting(
        None,
        "CPU threads torch computes with (default: the cores other work leaves free, or "
        "$WAVEGMS_THREADS)",
        type=int,
        metavar="N",
    )
    device: str = _setting("auto", "cpu, cuda, cuda:1, mps or auto")
    taesd: str | None = _setting(
        None, "TAESD folder or hub id (default: $WAVEGMS_TAESD or the hub)"
    )
    synthetic_kind: str = _setting("ultrasound", "synthetic images to train on", choices=KINDS)
    synthetic_sizes: tuple[int, int, int] = _setting(
        (96, 24, 24), "synthetic item counts", metavar=("TRAIN", "VAL", "TEST")
    )
    notes: dict[str, Any] = _setting({}, "free-form notes saved with the run", cli=False)

    def __post_init__(self) -> None:
        self.synthetic_sizes = tuple(self.synthetic_sizes)
        self.validate()

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first invalid value and what is allowed."""
        for setting in dataclasses.fields(self):
            choices = setting.metadata.get("choices")
            if choices is not None and getattr(self, setting.name) not in choices:
                raise ValueError(
                    f"Invalid {setting.name}={getattr(self, setting.name)!r}: must be one of "
                    f"{', '.join(map(repr, choices))}."
                )
        check_image_size(self.image_size)
        checks = [
            (self.epochs >= 1, "epochs", "at least 1"),
            (self.batch_size >= 1, "batch_size", "at least 1"),
            (self.lr > 0, "lr", "positive"),
            (self.warmup_epochs >= 0, "warmup_epochs", "0 or more"),
            (0 < self.val_fraction < 1, "val_fraction", "between 0 and 1"),
            (0 < self.test_fraction < 1, "test_fraction", "between 0 and 1"),
            (self.val_every >= 1, "val_every", "at least 1"),
            (self.num_workers is None or self.num_workers >= 0, "num_workers", "0 or more"),
            (self.threads is None or self.threads >= 1, "threads", "at least 1"),
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
        atomic_write_json(Path(path), self.to_dict())

    @classmethod
    def load(cls, path: str | Path) -> TrainConfig:
        """Read a saved configuration; a bad file raises ``ValueError`` naming it."""
        return load_dataclass(cls, path)

    def replace(self, **overrides: Any) -> TrainConfig:
        return dataclasses.replace(self, **overrides)


def preset(name: str, **overrides: Any) -> TrainConfig:
    """The configuration of preset ``name`` with ``overrides`` applied."""
    if name not in PRESETS:
        raise ValueError(f"Unknown preset {name!r}: choose one of {', '.join(PRESETS)}.")
    return TrainConfig(**{**PRESETS[name], **overrides})
