"""wavegms: Wave-GMS, a lightweight multi-scale generative model for medical image segmentation."""

from .device import get_device
from .model import HEAD_NAMES, WaveGMS, WaveGMSOutput
from .tiny_vae import TAESD_HUB_ID, TinyVAEUnavailableError, load_tiny_vae

__version__ = "0.1.0"

__all__ = [
    "HEAD_NAMES",
    "TAESD_HUB_ID",
    "TinyVAEUnavailableError",
    "WaveGMS",
    "WaveGMSOutput",
    "__version__",
    "get_device",
    "load_tiny_vae",
]
