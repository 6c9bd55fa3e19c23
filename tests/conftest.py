"""Shared fixtures: the real TAESD from ``$WAVEGMS_TAESD`` (CI: ../shared/taesd) or the hub."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from _paths import SHARED

# A local TAESD ($WAVEGMS_TAESD, else the shared copy CI has in ../shared/taesd) keeps the tests
# offline; without one, TAESD comes from the Hugging Face hub, as it does for users.
if not os.environ.get("WAVEGMS_TAESD") and (SHARED / "taesd" / "config.json").is_file():
    os.environ["WAVEGMS_TAESD"] = str(SHARED / "taesd")
if os.environ.get("WAVEGMS_TAESD"):
    # Absolute, so that notebook kernels (started in notebooks/) find it too.
    os.environ["WAVEGMS_TAESD"] = str(Path(os.environ["WAVEGMS_TAESD"]).resolve())
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

# Under pytest-xdist the workers already use every core: one thread each (and for the notebook
# kernels they start) avoids oversubscription, which makes small tensor ops many times slower.
if os.environ.get("PYTEST_XDIST_WORKER"):
    torch.set_num_threads(1)
    os.environ["OMP_NUM_THREADS"] = "1"


@pytest.fixture(scope="session")
def taesd_dir() -> Path:
    """A local TAESD folder: ``$WAVEGMS_TAESD``, else the hub's copy (downloaded once)."""
    if os.environ.get("WAVEGMS_TAESD"):
        return Path(os.environ["WAVEGMS_TAESD"])
    from huggingface_hub import snapshot_download

    from wavegms.tiny_vae import TAESD_HUB_ID

    return Path(snapshot_download(TAESD_HUB_ID))


@pytest.fixture(scope="session")
def tiny_vae():
    from wavegms import load_tiny_vae

    return load_tiny_vae()


@pytest.fixture
def seeded() -> None:
    torch.manual_seed(0)
