"""What the course notebooks share: how they open, their data, their training run.

Every notebook calls :func:`start` (seed, device, dataset, output folder), then
:func:`sample_batch` and :func:`course_config` as it needs, so that each opens the same way and
works on synthetic data until a real dataset has been prepared. Notebooks 03 to 05 share one
training run through :func:`run_dir_for` and :func:`ensure_trained`.

Running every notebook (``wavegms course``) is :mod:`wavegms.course.runner`'s job; keeping
the notebooks and their editions in step is :mod:`tools.authoring`'s.
"""

from __future__ import annotations

import os
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..engine.presets import PAPER_SEED, PRESETS

REPO_URL = "https://github.com/wavegms/wavegms"
NOTEBOOKS = (
    "00_setup.ipynb",
    "01_wavelets.ipynb",
    "02_tiny_vae_latents.ipynb",
    "03_lmm_training.ipynb",
    "04_evaluation.ipynb",
    "05_inference_on_your_images.ipynb",
)

# The parameters every notebook's `parameters` cell declares, per profile. The notebooks'
# default values ARE the quick profile (the builder writes them from here), so a notebook
# opened and run as is, or executed by nbval, is the quick course; its training settings are
# the quick preset's (one source: wavegms.engine.presets).
_QUICK = PRESETS["quick"]
PROFILES: dict[str, dict[str, Any]] = {
    # CPU minutes: synthetic ultrasound-like images at 64 px, a few items, a few epochs.
    "quick": {
        "DATASET": _QUICK["dataset"],
        "DATA_DIR": "data",
        "IMAGE_SIZE": _QUICK["image_size"],
        "EPOCHS": _QUICK["epochs"],
        "BATCH_SIZE": _QUICK["batch_size"],
        "QUICK": True,
        "DEVICE": "auto",
        "SEED": _QUICK["seed"],
    },
    # A real dataset at the paper's resolution and batch size, on a GPU. 300 epochs is a course
    # run (about half an hour of training on a T4, an estimate); the paper trains 1000.
    "full": {
        "DATASET": "busi",
        "DATA_DIR": "data",
        "IMAGE_SIZE": 224,
        "EPOCHS": 300,
        "BATCH_SIZE": 12,
        "QUICK": False,
        "DEVICE": "auto",
        "SEED": PAPER_SEED,
    },
}
COURSE_DIR_ENV = "WAVEGMS_COURSE_DIR"


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
    """

    dataset: str
    requested: str
    data_dir: Path
    device: Any  # torch.device; typed loosely so that importing this module stays light
    out_dir: Path
    seed: int

    @property
    def synthetic(self) -> bool:
        return self.dataset == "synthetic"


def repo_root() -> Path | None:
    """The root of a wavegms checkout that we run inside (cwd or the package's), or None."""
    here = Path(__file__).resolve().parents[1]
    for start in (Path.cwd().resolve(), here):
        for folder in (start, *start.parents):
            if (folder / "pyproject.toml").is_file() and (folder / "wavegms").is_dir():
                return folder
    return None


def default_out_dir() -> Path:
    """``$WAVEGMS_COURSE_DIR``, else ``build/course/work`` in a checkout, else
    ``./wavegms_course`` (Colab: ``/content/wavegms_course``)."""
    if os.environ.get(COURSE_DIR_ENV):
        return Path(os.environ[COURSE_DIR_ENV]).expanduser()
    root = repo_root()
    return root / "build" / "course" / "work" if root else Path.cwd() / "wavegms_course"


def resolve_data_dir(data_dir: str | os.PathLike) -> Path:
    """``data_dir`` as given when it exists; a relative one is also looked up from the checkout's
    root, because Jupyter starts notebooks in ``notebooks/`` while data lives in ``data/``."""
    path = Path(data_dir).expanduser()
    root = repo_root()
    if not path.exists() and not path.is_absolute() and root and (root / path).exists():
        return root / path
    return path


def resolve_dataset(dataset: str, data_dir: str | os.PathLike) -> str:
    """``dataset`` if it is ``"synthetic"`` or prepared in ``data_dir``; else ``"synthetic"``,
    after printing why and the command that prepares it."""
    from ..data import SegmentationDataset
    from ..engine.config import SOURCES

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
) -> CourseSession:
    """Open a notebook: seed everything, pick the device, check the dataset, make the output folder.

    Prints one line saying what was chosen. Falls back to the synthetic dataset (with the
    command that prepares the real one) when ``dataset`` is not prepared in ``data_dir``.
    """
    import matplotlib.pyplot as plt
    import numpy as np
    import torch

    from ..utils.device import get_device

    random.seed(seed)
    np.random.seed(seed)  # noqa: NPY002 - seeds the global state that student code may use
    torch.manual_seed(seed)
    _inline_figures()
    plt.rcParams.update({"figure.dpi": 72, "image.interpolation": "nearest"})
    data_dir = resolve_data_dir(data_dir)
    chosen = resolve_dataset(dataset, data_dir)
    out = Path(out_dir).expanduser() if out_dir else default_out_dir()
    out.mkdir(parents=True, exist_ok=True)
    session = CourseSession(chosen, dataset, data_dir, get_device(device), out, seed)
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
    import torch

    from ..data import SegmentationDataset, SyntheticDataset

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
    from ..engine.config import TrainConfig, preset

    common = {
        "image_size": image_size,
        "epochs": epochs,
        "batch_size": batch_size,
        "seed": session.seed,
        "device": str(session.device),
        "augment": not quick,
    }
    if session.synthetic:
        # Quick: the quick preset's few dozen items; full: TrainConfig's default sizes.
        sizes = {} if quick else {"synthetic_sizes": TrainConfig().synthetic_sizes}
        return preset("quick", **{**common, **sizes, **overrides})
    # Colab has 2 CPU cores: more loader workers than that only adds overhead.
    return preset(
        session.dataset,
        data_dir=str(session.data_dir),
        num_workers=min(2, os.cpu_count() or 1),
        **{**common, **overrides},
    )


def run_dir_for(session: CourseSession, config) -> Path:  # noqa: ANN001 - a TrainConfig
    """The run folder the notebooks share for ``config``: 03 trains it, 04 and 05 reuse it.

    Its name spells out what tells runs apart, e.g. ``run_busi_224px_300ep_seed2333``
    (``_noaug`` for the quick runs without augmentation).
    """
    name = f"run_{config.dataset}_{config.image_size}px_{config.epochs}ep_seed{config.seed}"
    return session.out_dir / (name + ("" if config.augment else "_noaug"))


def ensure_trained(
    config,  # noqa: ANN001 - a TrainConfig
    run_dir: str | os.PathLike,
    *,
    tiny_vae=None,  # noqa: ANN001
    callbacks: Sequence[Any] | None = None,
    progress: bool = True,
) -> Path:
    """A run of ``config`` in ``run_dir``, trained only as far as needed. Returns ``run_dir``.

    An empty folder gets a new run. A folder holding a run is continued with
    ``train(config, run_dir, resume=True)``: a finished run of the same settings is reused as
    it is (so notebook 04 evaluates what 03 trained, and running a notebook twice trains
    once), an interrupted one goes on from its last epoch. What may differ from the saved run
    is what :data:`wavegms.engine.config.RESUMABLE` allows; any other difference is refused with a
    message, never overwritten.
    """
    from ..engine.checkpoint import TRAIN_CONFIG
    from ..engine.config import RESUMABLE
    from ..engine.train import train

    run_dir = Path(run_dir)
    resume = (run_dir / TRAIN_CONFIG).is_file()
    if resume:
        print(
            f"Continuing the run in {run_dir} (a finished run is reused; delete the folder to "
            f"train again; settings that may differ: {', '.join(RESUMABLE)})."
        )
    else:
        print(f"Training a new run in {run_dir} ({config.epochs} epochs).")
    train(config, run_dir, resume=resume, progress=progress, callbacks=callbacks, tiny_vae=tiny_vae)
    return run_dir


def read_history(run_dir: str | os.PathLike) -> list[dict[str, Any]]:
    """The per-epoch records of a run (its ``log.jsonl``)."""
    import json

    from ..engine.checkpoint import LOG

    lines = (Path(run_dir) / LOG).read_text().splitlines()
    return [json.loads(line) for line in lines if line.strip()]


__all__ = [
    "NOTEBOOKS",
    "PROFILES",
    "CourseSession",
    "course_config",
    "ensure_trained",
    "read_history",
    "run_dir_for",
    "sample_batch",
    "start",
]
