"""What the course notebooks share: how they open, their data, their training run.

Every notebook calls :func:`start` (seed, device, dataset, output folder), then
:func:`sample_batch` and :func:`course_config` as it needs, so that each opens the same way and
works on synthetic data until a real dataset has been prepared. Notebooks 03 to 05 share one
training run through :func:`run_dir_for` and :func:`ensure_trained`.

Running every notebook (``wavegms course``) is :mod:`wavegms.course.runner`'s job; keeping
the notebooks and their editions in step is :mod:`tools.authoring`'s.
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import torch
from diffusers import AutoencoderTiny

from ..data import SegmentationDataset, SyntheticDataset
from ..engine.checkpoint import LOG, TRAIN_CONFIG, resolve_config
from ..engine.config import SOURCES, TrainConfig, preset
from ..engine.train import train
from ..utils.device import get_device
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
    """

    dataset: str
    requested: str
    data_dir: Path
    device: torch.device
    out_dir: Path
    seed: int
    threads: int | None = None

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
    seed: int = 0,
    out_dir: str | os.PathLike | None = None,
    threads: int | None = None,
) -> CourseSession:
    """Open a notebook: seed everything, pick the device and the CPU threads, check the
    dataset, make the output folder.

    Prints what was chosen (a line for the threads, one for the rest). Falls back to the
    synthetic dataset (with the command that prepares the real one) when ``dataset`` is not
    prepared in ``data_dir``.
    """
    random.seed(seed)
    np.random.seed(seed)  # noqa: NPY002 - seeds the global state that student code may use
    torch.manual_seed(seed)
    _inline_figures()
    plt.rcParams.update({"figure.dpi": 72, "image.interpolation": "nearest"})
    data_dir = resolve_data_dir(data_dir)
    chosen = resolve_dataset(dataset, data_dir)
    out = Path(out_dir).expanduser() if out_dir else default_out_dir()
    out.mkdir(parents=True, exist_ok=True)
    session = CourseSession(chosen, dataset, data_dir, get_device(device), out, seed, threads)
    configure_threads(threads)
    where = "synthetic ultrasound-like images" if session.synthetic else f"{data_dir / chosen}"
    print(f"dataset: {chosen} ({where}) | device: {session.device} | outputs: {out}")
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
    dataset uses its paper preset. ``image_size``, ``epochs``, ``batch_size``, the seed and the
    device always come from the notebook's parameters; ``overrides`` win over everything.
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
        "augment": not quick,
    }
    if session.synthetic:
        # Quick: the quick preset's few dozen items; full: TrainConfig's default sizes.
        sizes = {} if quick else {"synthetic_sizes": TrainConfig().synthetic_sizes}
        return preset("quick", **{**common, **sizes, **overrides})
    return preset(session.dataset, data_dir=str(session.data_dir), **{**common, **overrides})


def run_dir_for(session: CourseSession, config: TrainConfig) -> Path:
    """The run folder the notebooks share for ``config``: 03 trains it, 04 and 05 reuse it.

    Its name spells out what tells runs apart, e.g. ``run_busi_224px_300ep_seed2333``
    (``_noaug`` for the quick runs without augmentation).
    """
    name = f"run_{config.dataset}_{config.image_size}px_{config.epochs}ep_seed{config.seed}"
    return session.out_dir / (name + ("" if config.augment else "_noaug"))


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
    :data:`wavegms.engine.config.RESUMABLE` allows; any other difference is refused with a
    message, never overwritten. What it prints speaks of the notebook's parameters, not of
    command-line flags. ``progress``: progress bars, or one line per epoch; None: bars where
    they render live (a Jupyter kernel with widgets), lines in a headless run, whose saved
    notebook would keep a bar's first state ("0%") for good.
    """
    run_dir = Path(run_dir)
    progress = widgets_available() if progress is None else progress
    resume = (run_dir / TRAIN_CONFIG).is_file()
    if resume:
        wanted = resolve_config(config, run_dir, resume=True)  # refuses other settings
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


def read_history(run_dir: str | os.PathLike) -> list[dict[str, Any]]:
    """The per-epoch records of a run (its ``log.jsonl``)."""
    lines = (Path(run_dir) / LOG).read_text().splitlines()
    return [json.loads(line) for line in lines if line.strip()]


__all__ = [
    "CourseSession",
    "course_config",
    "ensure_trained",
    "read_history",
    "run_dir_for",
    "sample_batch",
    "start",
]
