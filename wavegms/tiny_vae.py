"""The frozen Tiny-VAE (TAESD for SD 1.x/2.x) that defines Wave-GMS's latent space.

(docs/paper_map.md, "Tiny-VAE".)

TAESD's encoder maps ``[-1, 1]`` images to 4-channel latents at 1/8 resolution and its decoder maps
them back to ``[-1, 1]``; its scaling factor is 1, so no rescaling sits between the two. Wave-GMS
never trains it: it supplies the mask-latent targets, the teacher latents for the alignment loss,
and the decoder through which the Dice loss and predictions pass. A model holds it in a
:class:`FrozenTinyVAE`, beside its trainable modules.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import nn

if TYPE_CHECKING:  # diffusers is imported when TAESD is loaded: checking a size stays light
    from diffusers import AutoencoderTiny

TAESD_HUB_ID = "madebyollin/taesd"
TAESD_ENV = "WAVEGMS_TAESD"
SCALE = 8  # TAESD's latents are 1/8 of the image in each direction


class TinyVAEUnavailableError(RuntimeError):
    """The TAESD weights could not be loaded from the requested source."""


def default_tiny_vae_source() -> str:
    """``$WAVEGMS_TAESD`` when set, else the hub id ``madebyollin/taesd``."""
    return os.environ.get(TAESD_ENV) or TAESD_HUB_ID


def is_hub_id(source: str) -> bool:
    """Whether ``source`` reads as a Hugging Face hub id, ``owner/name``, rather than a path.
    Something that exists on disk is a path, whatever its name."""
    return re.fullmatch(r"[\w.-]+/[\w.-]+", source) is not None and not (
        Path(source).expanduser().exists()
    )


def check_image_size(height: int, width: int | None = None, name: str = "image_size") -> None:
    """Raise ``ValueError`` unless ``height`` and ``width`` (default: ``height``) are positive
    multiples of :data:`SCALE`, which TAESD's 1/8 latent grid needs."""
    width = height if width is None else width
    sizes = (height, width)
    if all(type(n) is int and n > 0 and n % SCALE == 0 for n in sizes):
        return
    size = f"{height!r}" if height == width else f"{height!r}x{width!r} (HxW)"
    if not all(type(n) is int for n in sizes):
        problem = "not an integer"
    elif not all(n > 0 for n in sizes):
        problem = "not positive"
    else:
        problem = f"not divisible by {SCALE} (TAESD works at 1/{SCALE} resolution)"
    raise ValueError(
        f"Invalid {name}={size}: {problem}; use a positive multiple of {SCALE}, e.g. 224."
    )


def load_tiny_vae(
    source: str | os.PathLike | None = None, device: torch.device | str | None = None
) -> AutoencoderTiny:
    """Load TAESD frozen: eval mode, ``requires_grad`` off for every parameter.

    Args:
        source: a hub id or a local folder in diffusers layout (``config.json`` +
            ``diffusion_pytorch_model.safetensors``). ``None`` uses ``$WAVEGMS_TAESD`` if set,
            else the hub id ``madebyollin/taesd``.
        device: where to put it (default: CPU; a :class:`~wavegms.WaveGMS` whose weights are
            elsewhere uses a copy placed like them, see :class:`FrozenTinyVAE`).
    """
    source = str(source) if source is not None else default_tiny_vae_source()
    how_to_fix = (
        f"Point wavegms at a local copy: download it once where you have internet with "
        f"`hf download {TAESD_HUB_ID} --local-dir ./taesd`, then set the environment variable "
        f"{TAESD_ENV}=/path/to/taesd or pass load_tiny_vae('/path/to/taesd')."
    )
    local = not is_hub_id(source)
    if local:
        folder = Path(source).expanduser()
        if not (folder / "config.json").is_file():
            raise TinyVAEUnavailableError(
                f"No TAESD found at {str(folder)!r}: expected a folder with config.json and "
                f"diffusion_pytorch_model.safetensors. {how_to_fix}"
            )
        source = str(folder)
    from diffusers import AutoencoderTiny

    try:
        # low_cpu_mem_usage=False: the model is tiny, and it avoids a warning without accelerate.
        # diffusers only warns (pages of key names) about weights that do not fit and leaves
        # them random: it is quiet here, and _check_weights refuses such a load.
        with _diffusers_quiet():
            vae, loading = AutoencoderTiny.from_pretrained(
                source, low_cpu_mem_usage=False, output_loading_info=True
            )
    except Exception as error:  # hub and file errors come in many types; all mean "not here"
        why = f"{type(error).__name__}: {' '.join(str(error).split())[:300]}"
        raise TinyVAEUnavailableError(
            f"Could not load TAESD from the folder {source!r} ({why}): it is damaged or not "
            f"TAESD. {how_to_fix}"
            if local
            else f"Could not load TAESD from {source!r}: it is not in the local Hugging Face "
            f"cache and the hub could not be reached (offline?), or the id is wrong ({why}). "
            f"{how_to_fix}"
        ) from error
    _check_weights(source, vae, loading)
    if vae.config.latent_channels != 4:
        raise TinyVAEUnavailableError(
            f"{source!r} is not the SD 1.x/2.x TAESD (it has {vae.config.latent_channels} latent "
            "channels, Wave-GMS needs 4). Use madebyollin/taesd, not taesdxl or taesd3."
        )
    vae.requires_grad_(False).eval()
    if device is not None:
        vae.to(device)
    return vae


def _check_weights(source: str, vae: AutoencoderTiny, loading: dict[str, list]) -> None:
    """Refuse a load that left TAESD's tensors random: a folder holding other weights (e.g. a
    Wave-GMS checkpoint) loads "successfully" in diffusers, and then segments nothing."""
    if loading.get("error_msgs"):
        raise TinyVAEUnavailableError(
            f"Could not load TAESD's weights from {source!r}: {loading['error_msgs'][0]}"
        )
    missing = list(loading.get("missing_keys", []))
    missing += [str(key[0]) for key in loading.get("mismatched_keys", [])]
    if not missing:
        return
    held = _class_name(Path(source) / "config.json")
    what = f" (it holds a {held})" if held not in (None, "AutoencoderTiny") else ""
    raise TinyVAEUnavailableError(
        f"{source!r} is not TAESD{what}: {len(missing)} of TAESD's {len(vae.state_dict())} "
        f"weight tensors are missing from it or have another shape (e.g. {missing[0]!r}). "
        f"Point {TAESD_ENV} (or --taesd) at a copy of {TAESD_HUB_ID}: "
        f"`hf download {TAESD_HUB_ID} --local-dir ./taesd`."
    )


def _class_name(config: Path) -> str | None:
    """The ``_class_name`` a diffusers ``config.json`` names, if it is a local, readable one."""
    try:
        return json.loads(config.read_text()).get("_class_name")
    except (OSError, ValueError, AttributeError):
        return None


@contextlib.contextmanager
def _diffusers_quiet() -> Iterator[None]:
    """diffusers' warnings off while TAESD loads (what they say is checked, and said in one
    line, by :func:`_check_weights`)."""
    from diffusers.utils import logging

    level = logging.get_verbosity()
    logging.set_verbosity_error()
    try:
        yield
    finally:
        logging.set_verbosity(level)


def placement(tensor: torch.Tensor) -> tuple[torch.device, torch.dtype, torch.memory_format]:
    """Where and how ``tensor`` is stored: its device, dtype and memory format (channels-last
    for a 4-D tensor stored so, else contiguous)."""
    channels_last = (
        tensor.dim() == 4
        and not tensor.is_contiguous()
        and tensor.is_contiguous(memory_format=torch.channels_last)
    )
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    return tensor.device, tensor.dtype, memory_format


class FrozenTinyVAE:
    """A frozen TAESD held beside a model's trainable modules, placed like their weights.

    It is not an ``nn.Module``, so a module that holds one keeps TAESD out of its
    ``parameters()``, ``state_dict()``, optimizers, checkpoints and ``train()``. The TAESD given
    is frozen (``requires_grad`` off, eval mode) and never converted: where the weights are on
    another device, dtype or memory format, :meth:`like` converts a copy of it, once per move,
    so models sharing one TAESD never change each other's.
    """

    def __init__(self, vae: AutoencoderTiny) -> None:
        self.given = vae.requires_grad_(False).eval()
        self.placed = self.given

    def like(self, weight: torch.Tensor) -> AutoencoderTiny:
        """The TAESD on ``weight``'s :func:`placement`: the one given if it is there already,
        else the copy made for the last placement asked for."""
        where = placement(weight)
        for vae in (self.placed, self.given):
            if placement(next(vae.parameters())) == where:
                self.placed = vae
                return vae
        device, dtype, memory_format = where
        # nn.Module.to, not diffusers' override: that one warns on every dtype cast (about
        # modules to keep in fp32, of which TAESD has none).
        self.placed = nn.Module.to(
            copy.deepcopy(self.given), device, dtype, memory_format=memory_format
        )
        return self.placed
