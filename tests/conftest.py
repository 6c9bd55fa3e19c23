"""Shared fixtures: the real TAESD from ``$WAVEGMS_TAESD`` (CI: ../shared/taesd) and paths."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"

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
def shared_dir() -> Path:
    return SHARED


@pytest.fixture(scope="session")
def tiny_vae():
    from wavegms import load_tiny_vae

    return load_tiny_vae()


@pytest.fixture
def seeded() -> None:
    torch.manual_seed(0)
