"""The course's notebooks and their profiles: which notebooks make the course, the parameters
each declares per profile, and where a notebook's data and outputs live. Plain values and
paths, no torch, so that ``wavegms course`` starts fast."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..engine.presets import PAPER_SEED, PRESETS
from ..utils.errors import cannot_read

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
        "PRECISION": "auto",  # on a CPU: fp32 (wavegms.course.session.training_format)
        "CHANNELS_LAST": None,  # on a GPU yes, on a CPU no
        "THREADS": None,  # chosen from the cores other work leaves free
        "SEED": _QUICK["seed"],
    },
    # A real dataset at the paper's resolution and batch size, on a GPU, in mixed precision
    # (fp16 on a T4, bf16 from Ampere on) and channels-last. 300 epochs is a course run; the
    # paper trains 1000. On a T4 that is 35-60 minutes of training, an estimate, not a
    # measurement: 35 PFLOP (300 epochs of 465 training images at 247 GFLOP each and 52
    # validation images at 40 GFLOP, counted by torch.utils.flop_counter) at a sustained 10-16
    # TFLOP/s in fp16 (15-25% of the T4's 65 TFLOP/s peak); about 2.4 h in fp32 (4 TFLOP/s,
    # half its 8.1 TFLOP/s peak). docs/performance.md, "A full course run on a GPU".
    "full": {
        "DATASET": "busi",
        "DATA_DIR": "data",
        "IMAGE_SIZE": 224,
        "EPOCHS": 300,
        "BATCH_SIZE": 12,
        "QUICK": False,
        "DEVICE": "auto",
        "PRECISION": "auto",
        "CHANNELS_LAST": None,
        "THREADS": None,
        "SEED": PAPER_SEED,
    },
}
COURSE_DIR_ENV = "WAVEGMS_COURSE_DIR"


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


def read_notebook(path: str | os.PathLike):  # noqa: ANN201 - an nbformat NotebookNode
    """The notebook at ``path`` (nbformat 4), or an error naming the file: ``ValueError`` when
    it is not a notebook (truncated, not JSON), ``OSError`` when it cannot be read."""
    import nbformat

    try:
        return nbformat.read(path, as_version=4)
    except OSError as error:
        raise cannot_read(error, path) from None
    except nbformat.reader.NotJSONError:
        why = "it is not valid JSON: truncated or damaged"
    except Exception as error:  # noqa: BLE001 - nbformat's errors for a bad structure vary
        why = f"{type(error).__name__}: {' '.join(str(error).split())[:200]}"
    raise ValueError(
        f"{path} is not a readable notebook ({why}): restore it (git checkout -- {path}) or fix it."
    )


def is_executed(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a notebook that papermill executed (``wavegms course``'s output),
    not a course source or someone's file."""
    try:
        return "papermill" in read_notebook(path).metadata
    except (OSError, ValueError):
        return False
