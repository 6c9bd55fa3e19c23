"""The course: run every notebook with papermill (``wavegms course``), and what they share.

Instructors run the whole course in one command; each notebook is executed in order, saved
executed, and exported to HTML::

    wavegms course                                   # quick: CPU, synthetic data, 64 px
    wavegms course --profile full --dataset busi --data data   # a real dataset on a GPU

Students never call the runner: the notebooks call :func:`start` (seed, device, dataset,
output folder), :func:`sample_batch` and :func:`course_config`, so that every notebook opens
the same way and works on synthetic data until a real dataset has been prepared.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import os
import random
import re
import tempfile
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
# opened and run as is, or executed by nbval, is the quick course.
PROFILES: dict[str, dict[str, Any]] = {
    # CPU minutes: synthetic ultrasound-like images at 64 px, a few items, a few epochs.
    "quick": {
        "DATASET": "synthetic",
        "DATA_DIR": "data",
        "IMAGE_SIZE": 64,
        "EPOCHS": 4,
        "BATCH_SIZE": 4,
        "QUICK": True,
        "DEVICE": "auto",
        "SEED": 0,
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
        "SEED": 2333,
    },
}
# Synthetic item counts (train, val, test) for quick runs; a full run on synthetic data uses
# TrainConfig's default sizes.
QUICK_SYNTHETIC_SIZES = (32, 8, 24)
# Per-cell time limit of `wavegms course`: a quick cell that runs this long is stuck, and a
# clear error naming it beats a silent CI timeout. Full runs train for hours: no limit.
CELL_TIMEOUT_S = {"quick": 900, "full": None}
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
    from .config import SOURCES
    from .data import SegmentationDataset

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

    from .device import get_device

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

    from .data import SegmentationDataset, SyntheticDataset

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
    """The :class:`~wavegms.config.TrainConfig` a notebook trains with.

    Synthetic data in quick mode uses the ``quick`` preset with a few dozen items; a real
    dataset uses its paper preset. ``image_size``, ``epochs``, ``batch_size``, the seed and the
    device always come from the notebook's parameters; ``overrides`` win over everything.
    Quick runs train without augmentation: over a handful of epochs it only slows learning
    down, while over the hundreds of a full run it is what keeps the model from overfitting.
    """
    from .config import preset

    common = {
        "image_size": image_size,
        "epochs": epochs,
        "batch_size": batch_size,
        "seed": session.seed,
        "device": str(session.device),
        "augment": not quick,
    }
    if session.synthetic:
        sizes = {"synthetic_sizes": QUICK_SYNTHETIC_SIZES} if quick else {}
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


# Settings that do not change what a run learns: a finished run with other values is reused.
_IRRELEVANT = ("device", "num_workers", "taesd", "data_dir", "notes")


def ensure_trained(
    config,  # noqa: ANN001 - a TrainConfig
    run_dir: str | os.PathLike,
    *,
    tiny_vae=None,  # noqa: ANN001
    callbacks: Sequence[Any] | None = None,
    progress: bool = True,
) -> Path:
    """A run of ``config`` in ``run_dir``, trained only as far as needed.

    A finished run of the same settings is reused as it is (so notebook 04 evaluates what 03
    trained, and running a notebook twice trains once); an interrupted one is resumed; an
    empty folder gets a new run. A folder holding a run of other settings is refused, never
    overwritten. Returns ``run_dir``.
    """
    from .checkpoint import LOG, TRAIN_CONFIG
    from .config import TrainConfig
    from .train import train

    run_dir = Path(run_dir)
    saved = run_dir / TRAIN_CONFIG
    if not saved.is_file():
        print(f"Training a new run in {run_dir} ({config.epochs} epochs).")
        train(config, run_dir, progress=progress, callbacks=callbacks, tiny_vae=tiny_vae)
        return run_dir
    previous = TrainConfig.load(saved).to_dict()
    different = [
        key
        for key, value in config.to_dict().items()
        if key not in _IRRELEVANT and previous.get(key) != value
    ]
    if different:
        raise ValueError(
            f"{run_dir} holds a run with other settings ({', '.join(different)}): choose another "
            "OUT_DIR, or delete that folder to train again."
        )
    log = run_dir / LOG
    done = len(log.read_text().splitlines()) if log.is_file() else 0
    if done >= config.epochs:
        print(f"Reusing the finished run in {run_dir} (delete the folder to train again).")
        return run_dir
    if done == 0:
        raise ValueError(
            f"{run_dir} holds a run stopped before its first epoch ended: delete that folder "
            "and run the cell again."
        )
    print(f"Resuming the run in {run_dir} from epoch {done + 1}.")
    train(config, run_dir, resume=True, progress=progress, callbacks=callbacks, tiny_vae=tiny_vae)
    return run_dir


def read_history(run_dir: str | os.PathLike) -> list[dict[str, Any]]:
    """The per-epoch records of a run (its ``log.jsonl``)."""
    import json

    from .checkpoint import LOG

    lines = (Path(run_dir) / LOG).read_text().splitlines()
    return [json.loads(line) for line in lines if line.strip()]


# ---- the runner ----------------------------------------------------------------------------


class CourseError(RuntimeError):
    """A notebook failed; the message names the notebook, the cell and the error."""

    def __init__(
        self, message: str, *, notebook: str, cell_index: int | None, executed: Path | None
    ) -> None:
        super().__init__(message)
        self.notebook = notebook
        self.cell_index = cell_index
        self.executed = executed


def notebooks_dir() -> Path:
    """The ``notebooks/`` folder of the checkout this package runs from."""
    root = repo_root()
    folder = root / "notebooks" if root else None
    if folder is None or not folder.is_dir():
        raise FileNotFoundError(
            "The course notebooks were not found: run `wavegms course` from a clone of "
            f"{REPO_URL} (git clone {REPO_URL} && cd wavegms && pip install -e '.[notebooks]')."
        )
    return folder


def select_notebooks(names: Iterable[str] | None, folder: Path) -> list[Path]:
    """The notebooks to run, in course order. ``names`` are file names, stems or prefixes
    such as ``"03"``; None means all of them."""
    paths = [folder / name for name in NOTEBOOKS]
    if names is None:
        chosen = paths
    else:
        chosen = []
        for name in names:
            stem = Path(str(name)).name.removesuffix(".ipynb")
            matches = [p for p in paths if p.stem == stem or p.stem.startswith(stem)]
            if len(matches) != 1:
                raise ValueError(
                    f"Notebook {name!r} matches {len(matches)} course notebooks; use one of "
                    f"{', '.join(p.stem for p in paths)} (or a unique prefix such as '03')."
                )
            chosen.append(matches[0])
        chosen = sorted(set(chosen), key=paths.index)
    for path in chosen:
        if not path.is_file():
            raise FileNotFoundError(f"Course notebook {path} is missing from the checkout.")
    return chosen


def profile_parameters(
    profile: str, out_dir: Path, overrides: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The papermill parameters of ``profile`` with ``overrides``; OUT_DIR is ``out_dir/work``."""
    if profile not in PROFILES:
        raise ValueError(f"Unknown profile {profile!r}: choose one of {', '.join(PROFILES)}.")
    values = {**PROFILES[profile], "OUT_DIR": str(out_dir.resolve() / "work")}
    values.update(overrides or {})
    data_dir = Path(values["DATA_DIR"]).expanduser()
    # The kernel may start elsewhere than the instructor's shell: pass folders absolute.
    values["DATA_DIR"] = str(resolve_data_dir(data_dir).resolve())
    return values


def _declared_parameters(path: Path) -> set[str]:
    import papermill

    return set(papermill.inspect_notebook(str(path)))


def _export_html(notebook_path: Path, html_path: Path) -> None:
    import nbformat
    from nbconvert import HTMLExporter

    from .checkpoint import atomic_write_text

    body, _ = HTMLExporter().from_notebook_node(nbformat.read(notebook_path, as_version=4))
    atomic_write_text(html_path, body)


def _failure(error: Exception, executed: Path) -> dict[str, Any]:
    """Where and how a notebook failed: from papermill's error, else from the saved notebook
    (a cell time-out or a dead kernel leave their cell marked "running" in it)."""
    if hasattr(error, "cell_index"):  # PapermillExecutionError
        return {
            "cell": error.cell_index,
            "count": error.exec_count,
            "source": error.source or "",
            "what": f"{error.ename}: {error.evalue}",
        }
    import nbformat

    cell, count, source = None, None, ""
    try:
        notebook = nbformat.read(executed, as_version=4)
    except (OSError, ValueError):
        notebook = None
    for index, candidate in enumerate(notebook.cells if notebook else []):
        if candidate.get("metadata", {}).get("papermill", {}).get("status") in (
            "running",
            "failed",
        ):
            cell, count, source = index, candidate.get("execution_count"), candidate.source
            break
    what = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return {
        "cell": cell,
        "count": count,
        "source": source,
        "what": f"{type(error).__name__}: {what}",
    }


def _failure_message(name: str, failure: dict[str, Any], executed: Path) -> str:
    source = failure["source"].strip().splitlines()
    first_line = source[0] if source else ""
    what = " ".join(failure["what"].split()).rstrip(".")
    if len(what) > 500:
        what = what[:500] + " ..."
    return (
        f"notebook {name} failed in cell {failure['cell']} (In [{failure['count']}]): {what}.\n"
        f"  The cell starts with: {first_line!r}.\n"
        f"  The executed notebook, with the full traceback, is {executed} "
        f"(and {executed.with_suffix('.html').name})."
    )


def run_course(
    profile: str = "quick",
    out_dir: str | os.PathLike = "build/course",
    notebooks: Sequence[str] | None = None,
    parameters: Mapping[str, Any] | None = None,
    kernel: str | None = None,
    *,
    source_dir: str | os.PathLike | None = None,
) -> list[Path]:
    """Execute the course notebooks in order with papermill and export each to HTML.

    Args:
        profile: ``"quick"`` (CPU, synthetic data, small images; the notebooks' defaults) or
            ``"full"`` (a real dataset at 224 px on a GPU); see :data:`PROFILES`.
        out_dir: where ``<notebook>.ipynb`` (executed) and ``<notebook>.html`` are written;
            runs and figures go to ``out_dir/work`` (the notebooks' ``OUT_DIR``).
        notebooks: names, stems or prefixes (``["00", "03"]``) to run; None runs all.
        parameters: papermill parameters overriding the profile's, e.g. ``{"EPOCHS": 20}``.
            Each notebook receives only the parameters its ``parameters`` cell declares.
        kernel: the Jupyter kernel name (default: the notebooks' own, ``python3``).
        source_dir: the folder holding the notebooks (default: the checkout's ``notebooks/``).

    Returns:
        The executed notebooks' paths, in order.

    Raises:
        CourseError: a notebook failed; the message names it, the cell and the error, and
            the partly executed notebook is saved for inspection.
    """
    import papermill
    from nbclient.exceptions import CellTimeoutError, DeadKernelError
    from papermill.exceptions import PapermillExecutionError

    out_dir = Path(out_dir).expanduser()
    folder = Path(source_dir).expanduser() if source_dir is not None else notebooks_dir()
    paths = select_notebooks(notebooks, folder)
    values = profile_parameters(profile, out_dir, parameters)
    declared = {path: _declared_parameters(path) for path in paths}
    unknown = set(parameters or {}) - set().union(*declared.values())
    if unknown:
        raise ValueError(
            f"Unknown notebook parameter(s) {', '.join(sorted(unknown))}: the notebooks declare "
            f"{', '.join(sorted(set().union(*declared.values())))}."
        )
    if profile == "full" and values["DATASET"] != "synthetic":
        # A full course on synthetic data by accident would waste a GPU hour: stop now.
        root = Path(values["DATA_DIR"]) / values["DATASET"]
        if not root.is_dir():
            raise FileNotFoundError(
                f"The full profile needs {values['DATASET']!r} prepared in {root.parent}: run "
                f"`python -m data_download {values['DATASET']} --root {root.parent}` first, or "
                "pass --dataset and --data."
            )
    out_dir.mkdir(parents=True, exist_ok=True)
    Path(values["OUT_DIR"]).mkdir(parents=True, exist_ok=True)
    print(f"Running {len(paths)} notebook(s), profile {profile!r}, into {out_dir}")
    executed = []
    with _widgets_off():
        for number, path in enumerate(paths, 1):
            target = out_dir / path.name
            fd, partial = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".ipynb", dir=out_dir)
            os.close(fd)
            began = time.perf_counter()
            try:
                papermill.execute_notebook(
                    str(path),
                    partial,
                    parameters={k: v for k, v in values.items() if k in declared[path]},
                    kernel_name=kernel,
                    progress_bar=False,
                    log_output=False,
                    execution_timeout=CELL_TIMEOUT_S[profile],
                )
            except (PapermillExecutionError, CellTimeoutError, DeadKernelError) as error:
                os.replace(partial, target)
                _export_html(target, target.with_suffix(".html"))
                print(f"[{number}/{len(paths)}] {path.stem:<36} FAILED after {_seconds(began)}")
                failure = _failure(error, target)
                raise CourseError(
                    _failure_message(path.name, failure, target),
                    notebook=path.name,
                    cell_index=failure["cell"],
                    executed=target,
                ) from None
            except BaseException:
                Path(partial).unlink(missing_ok=True)
                raise
            os.replace(partial, target)
            _export_html(target, target.with_suffix(".html"))
            print(f"[{number}/{len(paths)}] {path.stem:<36} ok  {_seconds(began)}")
            executed.append(target)
    print(f"Executed notebooks and their HTML exports are in {out_dir}")
    return executed


@contextlib.contextmanager
def _widgets_off() -> Iterator[None]:
    """Kernels started inside get ``WAVEGMS_NO_WIDGETS=1``: static figures only.

    nbclient, which papermill drives, can wait forever on a cell that opens ipywidgets
    (jupyter/nbclient#312; we saw it hang on notebook 01), and a headless run keeps only the
    static figures anyway.
    """
    from .widgets import NO_WIDGETS_ENV

    previous = os.environ.get(NO_WIDGETS_ENV)
    os.environ[NO_WIDGETS_ENV] = "1"
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(NO_WIDGETS_ENV, None)
        else:
            os.environ[NO_WIDGETS_ENV] = previous


def _seconds(began: float) -> str:
    return f"{time.perf_counter() - began:6.1f} s"


# ---- `wavegms course` ----------------------------------------------------------------------

HELP = "execute the course notebooks with papermill (quick: CPU + synthetic data)"
DESCRIPTION = (
    "Execute every course notebook in order with papermill and write the executed notebooks "
    "and an HTML export of each to --out. Profile 'quick' runs on a CPU with synthetic data in "
    "a few minutes; 'full' trains on a real dataset (prepare it first with "
    "`python -m data_download <dataset> --root DATA_DIR`) and wants a GPU."
)


def _parse_value(text: str) -> Any:  # noqa: ANN401
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text  # a bare word such as busi or cuda


def _parse_assignment(text: str) -> tuple[str, Any]:
    match = re.fullmatch(r"([A-Za-z_]\w*)=(.*)", text)
    if not match:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE (e.g. EPOCHS=20), got {text!r}")
    return match[1], _parse_value(match[2])


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from .config import SOURCES

    parser.add_argument(
        "--profile",
        choices=tuple(PROFILES),
        default="quick",
        help="quick: CPU, synthetic data, 64 px, minutes; full: a real dataset at 224 px on a GPU",
    )
    parser.add_argument(
        "--dataset", choices=SOURCES, help="the DATASET parameter (default: the profile's)"
    )
    parser.add_argument(
        "--data", metavar="DATA_DIR", help="the DATA_DIR parameter: the folder holding <dataset>/"
    )
    parser.add_argument(
        "--out", default="build/course", help="where the executed notebooks and HTML go"
    )
    parser.add_argument(
        "--notebooks", nargs="+", metavar="NAME", help="run only these (e.g. 00 03); default: all"
    )
    parser.add_argument(
        "-p",
        "--param",
        action="append",
        type=_parse_assignment,
        metavar="NAME=VALUE",
        help="override a notebook parameter, e.g. -p EPOCHS=20 (repeatable)",
    )
    parser.add_argument("--kernel", help="Jupyter kernel name (default: the notebooks' python3)")


def run(args: argparse.Namespace) -> int:
    overrides = dict(args.param or [])
    if args.dataset:
        overrides["DATASET"] = args.dataset
    if args.data:
        overrides["DATA_DIR"] = args.data
    run_course(args.profile, args.out, args.notebooks, overrides, args.kernel)
    return 0


__all__ = [
    "NOTEBOOKS",
    "PROFILES",
    "CourseError",
    "CourseSession",
    "course_config",
    "ensure_trained",
    "read_history",
    "run_course",
    "run_dir_for",
    "sample_batch",
    "start",
]
