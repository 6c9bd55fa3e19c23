"""What the course notebooks share: how they open, their data, their training run.

Every notebook calls :func:`start` (seed, device, training precision, dataset, output
folder), then :func:`sample_batch` and :func:`course_config` as it needs, so that each opens the
same way and works on synthetic data until a real dataset has been prepared. Notebooks 03 to 05
share one training run through :func:`run_dir_for` and :func:`ensure_trained`, kept on Google
Drive in Colab when they ask for it (:func:`keep_runs_on_drive`).

Running every notebook (``wavegms course``) is :mod:`wavegms.course.runner`'s job; keeping
the notebooks and their editions in step is :mod:`tools.authoring`'s.
"""

from __future__ import annotations

import json
import os
import random
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import torch
from diffusers import AutoencoderTiny

from ..data import SegmentationDataset, SyntheticDataset
from ..engine.checkpoint import LOG, TRAIN_CONFIG, resolve_config, unresumable_changes
from ..engine.config import SOURCES, TrainConfig, preset
from ..engine.train import train
from ..utils.device import PRECISION_NAMES, PRECISIONS, get_device, resolve_precision
from ..utils.threads import configure_threads
from .notebooks import default_out_dir, resolve_data_dir
from .widgets import widgets_available

# ---- what the notebooks share ------------------------------------------------------------------


@dataclass
class CourseSession:
    """What one notebook runs with, as chosen by :func:`start`.

    Attributes:
        dataset: the dataset actually used: ``"synthetic"``, or a real one that is prepared.
        requested: the dataset the parameters asked for (differs when we fell back).
        data_dir: the folder holding prepared ``<dataset>/`` folders.
        device: where tensors live (from :func:`wavegms.get_device`).
        out_dir: where runs and figures go (never the repository's ``notebooks/`` folder).
        seed: the seed set for ``random``, NumPy and PyTorch.
        threads: the CPU threads asked for (None: chosen, :mod:`wavegms.utils.threads`).
        precision: what training runs autocast to (``TrainConfig.precision``), from
            :func:`training_format`.
        channels_last: whether training runs use the channels-last memory format.
        runs_dir: where the training runs go, when not in ``out_dir`` (Google Drive:
            :func:`keep_runs_on_drive`).
    """

    dataset: str
    requested: str
    data_dir: Path
    device: torch.device
    out_dir: Path
    seed: int
    threads: int | None = None
    precision: str = "fp32"
    channels_last: bool = False
    runs_dir: Path | None = None

    @property
    def synthetic(self) -> bool:
        return self.dataset == "synthetic"


def resolve_dataset(dataset: str, data_dir: str | os.PathLike) -> str:
    """``dataset`` if it is ``"synthetic"`` or prepared in ``data_dir``; else ``"synthetic"``,
    after printing why and the command that prepares it."""
    if dataset not in SOURCES:
        raise ValueError(f"Unknown DATASET={dataset!r}: choose one of {', '.join(SOURCES)}.")
    if dataset == "synthetic":
        return dataset
    root = Path(data_dir) / dataset
    try:
        SegmentationDataset(root)  # lists the files only; raises when the folder is not prepared
    except FileNotFoundError:
        print(
            f"DATASET={dataset!r} is not prepared in {root}, so this notebook uses the synthetic "
            f"dataset instead.\nTo use the real images, prepare them once with\n"
            f"    python -m data_download {dataset} --root {Path(data_dir)}\n"
            f"(in Colab, prefix the command with !) and run the notebook again."
        )
        return "synthetic"
    return dataset


def training_format(
    precision: str, channels_last: bool | None, device: torch.device
) -> tuple[str, bool]:
    """The ``(precision, channels_last)`` the notebooks' training runs use on ``device``, from
    the ``PRECISION`` and ``CHANNELS_LAST`` parameters.

    ``precision``: one of :data:`~wavegms.utils.device.PRECISIONS`. ``"auto"`` stays ``"auto"``
    on a CUDA GPU, where :func:`~wavegms.utils.device.resolve_precision` picks bf16 from
    compute capability 8 (Ampere) on and fp16 with a gradient scaler below (Colab's T4; the
    full course's training there takes an estimated 35-60 minutes instead of 2.4 hours in
    fp32: docs/performance.md, "A full course run on a GPU"). Elsewhere ``"auto"`` is
    ``"fp32"``, even on a CPU that runs bf16 natively: the quick course's measured times and
    the scores its claims cells check are fp32's (ask for ``"bf16"`` to try it on a CPU).
    ``channels_last``: None means on a CUDA GPU yes (faster convolutions with mixed
    precision), elsewhere no.
    """
    if precision not in PRECISIONS:
        raise ValueError(
            f"Unknown PRECISION={precision!r}: choose one of {', '.join(map(repr, PRECISIONS))}."
        )
    if channels_last not in (None, True, False):
        raise ValueError(
            f"CHANNELS_LAST={channels_last!r} must be None (automatic), True or False."
        )
    gpu = device.type == "cuda"
    if precision == "auto" and not gpu:
        precision = "fp32"
    if precision == "fp16" and device.type == "cpu":
        raise ValueError(
            "PRECISION='fp16' needs a GPU: on a CPU choose 'bf16' or 'fp32' (or 'auto')."
        )
    return precision, gpu if channels_last is None else bool(channels_last)


def _inline_figures() -> None:
    """In a Jupyter kernel, draw figures into the notebook whatever ``$MPLBACKEND`` says
    (CI exports ``Agg``, and a kernel inherits it: its figures would silently vanish)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return
    shell = get_ipython()
    if shell is not None and hasattr(shell, "kernel"):
        shell.run_line_magic("matplotlib", "inline")


def start(
    dataset: str = "synthetic",
    data_dir: str | os.PathLike = "data",
    *,
    device: str = "auto",
    precision: str = "auto",
    channels_last: bool | None = None,
    seed: int = 0,
    out_dir: str | os.PathLike | None = None,
    threads: int | None = None,
) -> CourseSession:
    """Open a notebook: seed everything, pick the device, the CPU threads and the training
    precision and memory format (:func:`training_format`), check the dataset, make the output
    folder.

    Prints what was chosen (a line for the threads, one for the rest). Falls back to the
    synthetic dataset (with the command that prepares the real one) when ``dataset`` is not
    prepared in ``data_dir``.
    """
    random.seed(seed)
    np.random.seed(seed)  # noqa: NPY002 - seeds the global state that student code may use
    torch.manual_seed(seed)
    _inline_figures()
    plt.rcParams.update({"figure.dpi": 72, "image.interpolation": "nearest"})
    chosen_device = get_device(device)
    precision, channels_last = training_format(precision, channels_last, chosen_device)
    data_dir = resolve_data_dir(data_dir)
    chosen = resolve_dataset(dataset, data_dir)
    out = Path(out_dir).expanduser() if out_dir else default_out_dir()
    out.mkdir(parents=True, exist_ok=True)
    session = CourseSession(
        chosen,
        dataset,
        data_dir,
        chosen_device,
        out,
        seed,
        precision=precision,
        channels_last=channels_last,
        threads=threads,
    )
    configure_threads(threads)
    where = "synthetic ultrasound-like images" if session.synthetic else f"{data_dir / chosen}"
    trains = PRECISION_NAMES[resolve_precision(precision, chosen_device)]
    trains += f" ({precision})" if precision == "auto" else ""
    trains += ", channels-last" if channels_last else ""
    print(
        f"dataset: {chosen} ({where}) | device: {session.device}, training in {trains} | "
        f"outputs: {out}"
    )
    return session


def sample_batch(
    session: CourseSession,
    n: int,
    image_size: int,
    *,
    kind: str = "ultrasound",
) -> dict[str, Any]:
    """``n`` items of the session's dataset as one batch.

    Returns ``{"image": [n, 3, S, S] in [0, 1], "mask": [n, 1, S, S] in {0, 1}, "name": [n]}``
    on the CPU. Real datasets give ``n`` items evenly spaced over the dataset (so several
    classes appear); synthetic ones are drawn with ``kind`` and the session's seed.
    """
    if session.synthetic:
        dataset = SyntheticDataset(n, image_size=image_size, kind=kind, seed=session.seed)
        indices = list(range(n))
    else:
        dataset = SegmentationDataset(session.data_dir / session.dataset, image_size=image_size)
        step = max(1, len(dataset) // n)
        indices = list(range(0, len(dataset), step))[:n]
    items = [dataset[i] for i in indices]
    return {
        "image": torch.stack([item["image"] for item in items]),
        "mask": torch.stack([item["mask"] for item in items]),
        "name": [item["name"] for item in items],
    }


def course_config(
    session: CourseSession,
    *,
    image_size: int,
    epochs: int,
    batch_size: int,
    quick: bool,
    **overrides: Any,
):
    """The :class:`~wavegms.engine.config.TrainConfig` a notebook trains with.

    Synthetic data in quick mode uses the ``quick`` preset with a few dozen items; a real
    dataset uses its paper preset. ``image_size``, ``epochs``, ``batch_size``, the seed, the
    device, the precision and the memory format always come from the notebook's parameters
    (the last four through ``session``); ``overrides`` win over everything.
    Quick runs train without augmentation: over a handful of epochs it only slows learning
    down, while over the hundreds of a full run it is what keeps the model from overfitting.
    """
    common = {
        "image_size": image_size,
        "epochs": epochs,
        "batch_size": batch_size,
        "seed": session.seed,
        "device": str(session.device),
        "threads": session.threads,
        "precision": session.precision,
        "channels_last": session.channels_last,
        "augment": not quick,
    }
    if session.synthetic:
        # Quick: the quick preset's few dozen items; full: TrainConfig's default sizes.
        sizes = {} if quick else {"synthetic_sizes": TrainConfig().synthetic_sizes}
        return preset("quick", **{**common, **sizes, **overrides})
    return preset(session.dataset, data_dir=str(session.data_dir), **{**common, **overrides})


def run_dir_for(session: CourseSession, config: TrainConfig) -> Path:
    """The run folder the notebooks share for ``config``: 03 trains it, 04 and 05 reuse it.

    It lies in the session's output folder, or on Google Drive after
    :func:`keep_runs_on_drive`. Its name spells out what tells runs apart, e.g.
    ``run_busi_224px_300ep_seed2333`` (``_noaug`` for the quick runs without augmentation);
    the precision and memory format are not part of it: they may change when a run moves to
    another machine.
    """
    name = f"run_{config.dataset}_{config.image_size}px_{config.epochs}ep_seed{config.seed}"
    folder = session.runs_dir or session.out_dir
    return folder / (name + ("" if config.augment else "_noaug"))


# Where Colab mounts Google Drive, and the folder of the course's runs in it.
DRIVE_MOUNT = Path("/content/drive")
DRIVE_RUNS_DIR = DRIVE_MOUNT / "MyDrive" / "wavegms_runs"


def keep_runs_on_drive(session: CourseSession, drive_runs: bool) -> None:
    """With ``drive_runs`` in Colab, keep the session's training runs on Google Drive: mount it
    at :data:`DRIVE_MOUNT` (Colab asks for permission once) and set ``session.runs_dir`` to
    :data:`DRIVE_RUNS_DIR`, where :func:`run_dir_for` then puts them.

    A Colab runtime that disconnects loses its files, a training run included, and each
    notebook runs in a runtime of its own. With the runs on Drive, running 03 again after a
    disconnect continues the run from its last finished epoch (:func:`ensure_trained`), and 04
    and 05 find the run 03 trained. Outside Colab, ``drive_runs`` prints one line saying that
    the runs stay where they are, and changes nothing.
    """
    if drive_runs not in (True, False):
        raise ValueError(f"DRIVE_RUNS={drive_runs!r} must be True or False.")
    if not drive_runs:
        return
    if "google.colab" not in sys.modules:  # what the notebooks' install cell checks too
        print(
            "DRIVE_RUNS=True keeps the training runs on Google Drive in Colab only: here they "
            f"stay in {session.runs_dir or session.out_dir}."
        )
        return
    from google.colab import drive

    drive.mount(str(DRIVE_MOUNT))
    DRIVE_RUNS_DIR.mkdir(parents=True, exist_ok=True)
    session.runs_dir = DRIVE_RUNS_DIR
    print(
        f"Training runs are kept on Google Drive in {DRIVE_RUNS_DIR}: after a disconnect, run "
        "this notebook again (same parameters) to continue from the last finished epoch."
    )


def ensure_trained(
    config: TrainConfig,
    run_dir: str | os.PathLike,
    *,
    tiny_vae: AutoencoderTiny | None = None,
    callbacks: Sequence[Any] | None = None,
    progress: bool | None = None,
) -> Path:
    """A run of ``config`` in ``run_dir``, trained only as far as needed. Returns ``run_dir``.

    An empty folder gets a new run. A folder holding a run of the same settings is reused as
    it is when it has finished (so notebook 04 evaluates what 03 trained, and running a
    notebook twice trains once), and an interrupted one goes on from its last epoch
    (``train(config, run_dir, resume=True)``). What may differ from the saved run is what
    :data:`wavegms.engine.config.RESUMABLE` allows; any other difference is refused, never
    overwritten. What it prints, and the refusal, speak of the notebook's parameters
    (:data:`NOTEBOOK_PARAMETERS`), not of command-line flags. ``progress``: progress bars,
    or one line per epoch; None: bars where they render live (a Jupyter kernel with widgets),
    lines in a headless run, whose saved notebook would keep a bar's first state ("0%") for
    good.
    """
    run_dir = Path(run_dir)
    progress = widgets_available() if progress is None else progress
    resume = (run_dir / TRAIN_CONFIG).is_file()
    if resume:
        _refuse_other_settings(config, run_dir)
        wanted = resolve_config(config, run_dir, resume=True)
        history = read_history(run_dir) if (run_dir / LOG).is_file() else []
        done = history[-1]["epoch"] if history else 0
        if done >= wanted.epochs:
            print(
                f"Reusing the finished run in {run_dir} ({done} epochs): delete the folder to "
                "train again."
            )
            return run_dir
        print(f"Continuing the run in {run_dir} after epoch {done} of {wanted.epochs}.")
    else:
        print(f"Training a new run in {run_dir} ({config.epochs} epochs).")
    train(config, run_dir, resume=resume, progress=progress, callbacks=callbacks, tiny_vae=tiny_vae)
    return run_dir


# The notebook parameter behind each training setting (course_config); the other settings come
# from the preset that DATASET and QUICK choose.
NOTEBOOK_PARAMETERS = {
    "dataset": "DATASET",
    "data_dir": "DATA_DIR",
    "image_size": "IMAGE_SIZE",
    "epochs": "EPOCHS",
    "batch_size": "BATCH_SIZE",
    "seed": "SEED",
    "device": "DEVICE",
    "augment": "QUICK",
}


def _refuse_other_settings(config: TrainConfig, run_dir: Path) -> None:
    """``ValueError`` in a notebook's words when the run in ``run_dir`` was trained with
    settings that ``config`` changes and a resumed run may not change."""
    saved = TrainConfig.load(run_dir / TRAIN_CONFIG)
    changed = unresumable_changes(config, saved)
    if not changed:
        return
    old, new = saved.to_dict(), config.to_dict()

    def source(name: str) -> str:
        return NOTEBOOK_PARAMETERS.get(name, "set by DATASET and QUICK")

    trained = ", ".join(f"{name} {old[name]!r}" for name in changed)
    asked = ", ".join(f"{name} {new[name]!r} ({source(name)})" for name in changed)
    raise ValueError(
        f"{run_dir} holds a run trained with {trained}; this notebook's parameters ask for "
        f"{asked}. Give this notebook the parameters of the notebook that trained the run, or "
        "delete the folder to train again with these; nothing was changed."
    )


def read_history(run_dir: str | os.PathLike) -> list[dict[str, Any]]:
    """The per-epoch records of a run (its ``log.jsonl``)."""
    lines = (Path(run_dir) / LOG).read_text().splitlines()
    return [json.loads(line) for line in lines if line.strip()]


__all__ = [
    "CourseSession",
    "course_config",
    "ensure_trained",
    "keep_runs_on_drive",
    "read_history",
    "run_dir_for",
    "sample_batch",
    "start",
    "training_format",
]
