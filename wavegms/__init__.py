"""wavegms: Wave-GMS, a lightweight multi-scale generative model for medical image segmentation.

The public names are imported lazily, so ``import wavegms.data`` (or the CLI's ``--help``) does
not pay for diffusers and the model.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "get_device": "wavegms.device",
    "HEAD_NAMES": "wavegms.model",
    "WaveGMS": "wavegms.model",
    "WaveGMSOutput": "wavegms.model",
    "TAESD_HUB_ID": "wavegms.tiny_vae",
    "TinyVAEUnavailableError": "wavegms.tiny_vae",
    "load_tiny_vae": "wavegms.tiny_vae",
    "load_pretrained": "wavegms.pretrained",
    "list_pretrained": "wavegms.pretrained",
    "load_samples": "wavegms.samples",
}

__all__ = [
    "HEAD_NAMES",
    "TAESD_HUB_ID",
    "TinyVAEUnavailableError",
    "WaveGMS",
    "WaveGMSOutput",
    "__version__",
    "get_device",
    "list_pretrained",
    "load_pretrained",
    "load_samples",
    "load_tiny_vae",
]

if TYPE_CHECKING:
    from .device import get_device
    from .model import HEAD_NAMES, WaveGMS, WaveGMSOutput
    from .pretrained import list_pretrained, load_pretrained
    from .samples import load_samples
    from .tiny_vae import TAESD_HUB_ID, TinyVAEUnavailableError, load_tiny_vae


def lazy_exports(
    package: str, exports: dict[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """A package's ``__getattr__`` and ``__dir__`` that import ``name`` from the module
    ``exports[name]`` on first use (PEP 562)."""

    def __getattr__(name: str) -> Any:
        if name in exports:
            return getattr(importlib.import_module(exports[name]), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return sorted(exports)

    return __getattr__, __dir__


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
