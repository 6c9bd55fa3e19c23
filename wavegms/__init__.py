"""wavegms: Wave-GMS, a lightweight multi-scale generative model for medical image segmentation.

The public names are imported lazily, so ``import wavegms.data`` (or the CLI's ``--help``) does
not pay for diffusers and the model.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .utils.lazy import lazy_exports

__version__ = "0.1.0"

_EXPORTS = {
    "get_device": "wavegms.utils.device",
    "HEAD_NAMES": "wavegms.model",
    "WaveGMS": "wavegms.model",
    "WaveGMSOutput": "wavegms.model",
    "TAESD_HUB_ID": "wavegms.tiny_vae",
    "TinyVAEUnavailableError": "wavegms.tiny_vae",
    "load_tiny_vae": "wavegms.tiny_vae",
    "load_pretrained": "wavegms.pretrained",
    "list_pretrained": "wavegms.pretrained",
    "load_samples": "wavegms.course.samples",
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
    from .course.samples import load_samples
    from .model import HEAD_NAMES, WaveGMS, WaveGMSOutput
    from .pretrained import list_pretrained, load_pretrained
    from .tiny_vae import TAESD_HUB_ID, TinyVAEUnavailableError, load_tiny_vae
    from .utils.device import get_device


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
