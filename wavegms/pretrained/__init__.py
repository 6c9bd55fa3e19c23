"""Pretrained Wave-GMS models shipped in the package: real segmentations on a CPU, no training.

``load_pretrained("busi")`` returns the BUSI breast-ultrasound model (trained on a 2-core CPU
budget, not the paper's 1000 GPU epochs: its model card, ``busi/README.md``, gives the recipe
and the measured scores). Weights are stored in fp16 to keep the package small and are cast
back to the model's fp32 on loading. TAESD is not shipped: it comes from ``$WAVEGMS_TAESD`` or
the hub, as everywhere else.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from diffusers import AutoencoderTiny

    from ..model import WaveGMS

_HERE = Path(__file__).resolve().parent
PRETRAINED = ("busi",)


def list_pretrained() -> list[str]:
    """Names of the models shipped in the package (use them with :func:`load_pretrained`)."""
    return [name for name in PRETRAINED if (_HERE / name / "config.json").is_file()]


def pretrained_dir(name: str) -> Path:
    """The checkpoint folder of the shipped model ``name``."""
    if name not in PRETRAINED:
        raise ValueError(
            f"Unknown pretrained model {name!r}: choose one of {', '.join(PRETRAINED)}, or "
            "give a checkpoint folder or a Hugging Face hub id."
        )
    return _HERE / name


def resolve(name: str | os.PathLike) -> Path:
    """The local checkpoint folder of a shipped model's name, a folder, or a hub id (downloaded
    to the Hugging Face cache).

    Raises:
        FileNotFoundError: neither a shipped name, nor a folder, nor a hub id (says which exist).
    """
    from ..tiny_vae import is_hub_id

    if str(name) in PRETRAINED:
        return pretrained_dir(str(name))
    if Path(name).expanduser().is_dir():
        return Path(name).expanduser()
    if is_hub_id(str(name)):
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(str(name)))
    raise FileNotFoundError(
        f"No pretrained model {str(name)!r}: give one of {', '.join(list_pretrained())}, a "
        "checkpoint folder, or a Hugging Face hub id (owner/name)."
    )


def load_pretrained(
    name: str | os.PathLike = "busi",
    device: str | torch.device | None = None,
    precision: str = "fp32",
    tiny_vae: AutoencoderTiny | None = None,
) -> WaveGMS:
    """A ready-to-use :class:`~wavegms.WaveGMS`, in eval mode, with its frozen TAESD.

    Args:
        name: a shipped model (:func:`list_pretrained`, e.g. ``"busi"``), a checkpoint folder
            (a run folder's ``best/``) or a Hugging Face hub id.
        device: default :func:`~wavegms.get_device` (CUDA, else MPS where it works, else CPU).
        precision: ``"fp32"``, or ``"bf16"``/``"fp16"``/``"auto"`` to also apply
            :meth:`~wavegms.WaveGMS.prepare_for_inference` (then pass the same precision to
            ``predict``).
        tiny_vae: an already loaded TAESD (default: ``$WAVEGMS_TAESD`` or the hub).

    Example::

        model = load_pretrained("busi")
        probs = model.predict(images)  # images [B, 3, 224, 224] in [0, 1] -> [B, 1, 224, 224]
    """
    from ..model import WaveGMS
    from ..utils.device import get_device

    model = WaveGMS.from_pretrained(resolve(name), tiny_vae=tiny_vae)
    model = model.float()  # shipped weights are fp16: compute in fp32 unless asked otherwise
    model = model.to(get_device(device)).eval()
    return model.prepare_for_inference(precision) if precision != "fp32" else model


__all__ = ["PRETRAINED", "list_pretrained", "load_pretrained", "pretrained_dir", "resolve"]
