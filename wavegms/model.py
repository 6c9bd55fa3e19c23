"""Wave-GMS: wavelet encoder -> latent mapping model -> frozen Tiny-VAE decoder.

(docs/paper_map.md, "Model".) The trainable part (encoder + LMM, 2,595,804 parameters in the
paper configuration) is a plain ``nn.Module`` with a small :class:`WaveGMSConfig`;
:meth:`~WaveGMS.save_pretrained` writes the diffusers file layout (``config.json`` +
``diffusion_pytorch_model.safetensors``) atomically and :meth:`~WaveGMS.from_pretrained` reads
it back with safetensors, unpickling nothing.

The frozen TAESD sits beside the trainable modules, as diffusers' training scripts keep their
VAE beside the UNet: a :class:`~wavegms.tiny_vae.FrozenTinyVAE`, which is not an ``nn.Module``,
so TAESD is never in ``parameters()``, an optimizer, ``state_dict()`` or a checkpoint, and
``train()`` never reaches it. :attr:`WaveGMS.tiny_vae` gives it on the weights' device, dtype
and memory format whatever ``.to()``, ``.cuda()`` or ``.bfloat16()`` did to them; the TAESD
passed in is never converted, so models sharing one do not change each other's.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as safetensors_bytes
from torch import nn
from torch.utils.checkpoint import checkpoint

from .encoder import MultiResolutionEncoder
from .lmm import HEAD_NAMES, LatentMappingModel
from .tiny_vae import FrozenTinyVAE, check_image_size, is_hub_id, load_tiny_vae
from .utils.atomic import atomic_write_bytes, atomic_write_json
from .utils.device import autocast, resolve_precision
from .utils.errors import read_bytes
from .utils.jsonfile import load_dataclass, read_json_object

if TYPE_CHECKING:
    from diffusers import AutoencoderTiny

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "diffusion_pytorch_model.safetensors"


@dataclass
class WaveGMSOutput:
    """What the training objective needs from one forward pass.

    Shapes for a batch of B images of H x W (h = H/8, w = W/8); K = 3 supervised heads.

    Attributes:
        mask_latents: K predicted mask latents ``[B, 4, h, w]``, ordered as ``HEAD_NAMES``
            (level2, level1, out); the last one is the prediction.
        latent: the encoder's latent ``z`` ``[B, 4, h, w]`` (a sample in training, ``mu`` in eval).
        mu: encoder mean ``[B, 4, h, w]``.
        logvar: encoder log-variance ``[B, 4, h, w]``, clamped to [-30, 20].
        teacher_latent: TAESD latent of the image ``[B, 4, h, w]`` (no gradient), or None.
        mask_latent: TAESD latent of the mask, the target ``[B, 4, h, w]`` (no gradient), or None.
        mask_probs: decoded heads ``[K, B, 1, H, W]`` in [0, 1] (gradient flows through the
            frozen decoder), or None when no masks were given.
    """

    mask_latents: tuple[torch.Tensor, ...]
    latent: torch.Tensor
    mu: torch.Tensor
    logvar: torch.Tensor
    teacher_latent: torch.Tensor | None = None
    mask_latent: torch.Tensor | None = None
    mask_probs: torch.Tensor | None = None


@dataclass(frozen=True)
class WaveGMSConfig:
    """The architecture (the paper's by default), saved as ``config.json``."""

    in_channels: int = 3
    latent_channels: int = 4
    wavelet_levels: int = 3
    encoder_base_channels: int = 16
    encoder_channel_mult: tuple[int, ...] = (1, 2, 2)
    encoder_blocks_per_stage: int = 2
    lmm_base_channels: int = 32
    lmm_channel_mult: tuple[int, ...] = (1, 2, 4, 4)
    image_size: int = 224  # the input size the model was trained at (used by predict, evaluate)

    def __post_init__(self) -> None:
        for name in ("encoder_channel_mult", "lmm_channel_mult"):
            object.__setattr__(self, name, tuple(getattr(self, name)))  # JSON gives lists
        if self.wavelet_levels != 3:
            # TAESD downsamples by 8 = 2^3: the pyramid's coarsest level must match its latents.
            raise ValueError(
                f"wavelet_levels must be 3 to match TAESD's x8 latents, got {self.wavelet_levels}"
            )
        for name in (
            "in_channels",
            "latent_channels",
            "encoder_base_channels",
            "encoder_blocks_per_stage",
            "lmm_base_channels",
        ):
            value = getattr(self, name)
            if type(value) is not int or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        for name in ("encoder_channel_mult", "lmm_channel_mult"):
            mult = getattr(self, name)
            if not mult or any(type(m) is not int or m < 1 for m in mult):
                raise ValueError(
                    f"{name} must be a non-empty list of positive integers, got {list(mult)!r}"
                )
        # predict and evaluate resize their inputs to it: TAESD needs a multiple of 8.
        check_image_size(self.image_size, name="image_size")


# Values this far outside [0, 1] are an input on another scale (0..255, 0..65535, -1..1),
# not resampling overshoot.
PIXEL_TOLERANCE = 0.1


def check_pixels(images: torch.Tensor | np.ndarray) -> torch.Tensor:
    """``images`` as a float tensor in [0, 1], or ``ValueError`` saying what is wrong.

    A numpy array becomes a tensor (same layout); ``uint8`` is scaled by 1/255; other integer
    or bool types are refused. Float values must be finite and within [0, 1] give or take
    ``PIXEL_TOLERANCE``. One reduction over the batch (one device synchronisation).
    """
    if isinstance(images, np.ndarray):
        images = torch.from_numpy(np.ascontiguousarray(images))
    if not isinstance(images, torch.Tensor):
        raise ValueError(f"images must be a torch.Tensor or numpy array, got {type(images)}.")
    if images.dtype == torch.uint8:
        return images.float() / 255
    if not images.is_floating_point():
        raise ValueError(
            f"images of type {images.dtype} are not supported: convert them to float in [0, 1] "
            "(e.g. divide 16-bit images by 65535); uint8 images are scaled automatically."
        )
    if images.numel() == 0:
        return images
    low, high = torch.aminmax(images.detach().float())
    low, high = low.item(), high.item()
    if not (math.isfinite(low) and math.isfinite(high)):
        bad = int((~torch.isfinite(images)).sum())
        raise ValueError(
            f"images hold {bad} NaN or infinite values: replace them (e.g. torch.nan_to_num) "
            "or check how the image was read; the mask would be empty."
        )
    if low < -PIXEL_TOLERANCE or high > 1 + PIXEL_TOLERANCE:
        raise ValueError(
            f"images must be in [0, 1], got values in [{low:g}, {high:g}]: divide 0..255 "
            "images by 255 (uint8 tensors are scaled automatically), map -1..1 images with "
            "(x + 1) / 2."
        )
    return images


class WaveGMS(nn.Module):
    """The Wave-GMS segmentation model.

    ``WaveGMS(tiny_vae)`` builds the paper configuration around a frozen TAESD
    (from :func:`~wavegms.load_tiny_vae`); ``WaveGMS()`` loads TAESD from ``$WAVEGMS_TAESD`` or the
    hub; keyword arguments are :class:`WaveGMSConfig` fields. Images are ``[B, 3, H, W]`` in
    [0, 1] with H and W multiples of 8; masks ``[B, 1, H, W]`` in {0, 1}.
    """

    def __init__(self, tiny_vae: AutoencoderTiny | None = None, **config: int | Sequence[int]):
        super().__init__()
        self.config = c = WaveGMSConfig(**config)
        self.encoder = MultiResolutionEncoder(
            c.in_channels,
            c.latent_channels,
            c.wavelet_levels,
            c.encoder_base_channels,
            c.encoder_channel_mult,
            c.encoder_blocks_per_stage,
        )
        self.lmm = LatentMappingModel(c.latent_channels, c.lmm_base_channels, c.lmm_channel_mult)
        self.gradient_checkpointing = False
        self._tiny_vae = FrozenTinyVAE(tiny_vae if tiny_vae is not None else load_tiny_vae())

    # ---- the frozen Tiny-VAE ------------------------------------------------------------------

    @property
    def tiny_vae(self) -> AutoencoderTiny:
        """The frozen TAESD on this model's device, dtype and memory format: the one passed in
        where it is already there, else a copy converted for this model (see
        :class:`~wavegms.tiny_vae.FrozenTinyVAE`)."""
        return self._tiny_vae.like(next(self.parameters()))

    @property
    def device(self) -> torch.device:
        """Where the weights are (all on one device)."""
        return next(self.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        """The weights' dtype (all alike): float32, or bfloat16 after ``prepare_for_inference``."""
        return next(self.parameters()).dtype

    @torch.no_grad()
    def encode_targets(
        self, images: torch.Tensor, masks: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """TAESD latents of the images (teacher) and of the masks (target), one batched call.

        ``images [B, 3, H, W]`` in [0, 1], ``masks [B, 1, H, W]`` in {0, 1} ->
        ``(teacher_latent, mask_latent)``, each ``[B, 4, H/8, W/8]``.
        """
        masks3 = masks.to(images.dtype).expand(-1, images.shape[1], -1, -1)
        latents = self.tiny_vae.encode(torch.cat([images, masks3]) * 2 - 1).latents
        return latents.chunk(2)

    def decode(self, mask_latents: torch.Tensor) -> torch.Tensor:
        """Mask latents ``[N, 4, h, w]`` -> foreground probabilities ``[N, 1, 8h, 8w]`` in [0, 1]:
        TAESD decodes to RGB in [-1, 1], and the probability is its channel mean mapped to
        [0, 1]. Differentiable with respect to ``mask_latents``."""
        rgb = self.tiny_vae.decode(mask_latents).sample
        return ((rgb.mean(dim=1, keepdim=True) + 1) / 2).clamp(0, 1)

    # ---- forward passes -----------------------------------------------------------------------

    def _check_images(self, images: torch.Tensor) -> None:
        if images.ndim != 4 or images.shape[1] != self.config.in_channels:
            hint = ""
            if images.ndim == 4 and images.shape[1] == 1:
                hint = " Grey images: repeat them to 3 channels, e.g. images.expand(-1, 3, -1, -1)."
            elif images.shape[-1] == self.config.in_channels and images.ndim in (3, 4):
                hint = (
                    " For channels-last images [H, W, 3] or [B, H, W, 3] (as numpy and PIL give "
                    "them): torch.as_tensor(x).permute(0, 3, 1, 2) (add a batch axis with [None])."
                )
            raise ValueError(
                f"Wave-GMS expects images of shape [B, {self.config.in_channels}, H, W], got "
                f"{tuple(images.shape)}.{hint}"
            )
        check_image_size(*images.shape[-2:], name="image size")

    def forward(self, images: torch.Tensor, masks: torch.Tensor | None = None) -> WaveGMSOutput:
        """Training forward.

        Args:
            images: ``[B, 3, H, W]`` in [0, 1].
            masks: ``[B, 1, H, W]`` in {0, 1}, or None to get the latents only.

        In train mode the latent is the reparameterised sample ``mu + sigma * eps``; in eval mode
        it is ``mu``. With masks, the output also holds the TAESD teacher and mask latents and the
        decoded heads, all that :class:`~wavegms.losses.WaveGMSLoss` needs.
        """
        self._check_images(images)
        posterior = self.encoder.posterior(images)
        latent = posterior.sample() if self.training else posterior.mode()
        mask_latents = self.lmm(latent)
        out = WaveGMSOutput(
            mask_latents=mask_latents, latent=latent, mu=posterior.mean, logvar=posterior.logvar
        )
        if masks is None:
            return out
        if masks.shape[-2:] != images.shape[-2:] or masks.shape[:2] != (images.shape[0], 1):
            raise ValueError(
                f"masks must be [B, 1, H, W] matching images {tuple(images.shape)}, got "
                f"{tuple(masks.shape)}"
            )
        out.teacher_latent, out.mask_latent = self.encode_targets(images, masks)
        if torch.is_grad_enabled() and self.gradient_checkpointing:
            # One checkpointed decode per head: the backward pass recomputes one head's decoder
            # activations at a time, so the peak holds one head's instead of all three.
            out.mask_probs = torch.stack(
                [checkpoint(self.decode, z, use_reentrant=False) for z in mask_latents]
            )
        else:
            # One decoder call over all heads: [K*B, 4, h, w] -> [K, B, 1, H, W].
            out.mask_probs = self.decode(torch.cat(mask_latents)).unflatten(
                0, (len(mask_latents), -1)
            )
        return out

    def enable_gradient_checkpointing(self) -> None:
        """Recompute TAESD's decoder in the backward pass (see :meth:`forward`): less memory."""
        self.gradient_checkpointing = True

    @torch.inference_mode()
    def predict(self, images: torch.Tensor | np.ndarray, precision: str = "fp32") -> torch.Tensor:
        """Foreground probabilities for a batch of images, deterministic (encoder mean).

        Args:
            images: ``[B, 3, H, W]`` float in [0, 1], any device (moved to the model's); a
                numpy array of that layout is taken as well. ``uint8`` images (0..255) are
                scaled by 1/255. NaN or infinite values, values far outside [0, 1] (e.g.
                0..255 floats) and other integer types raise ``ValueError`` saying how to fix
                them (see :func:`check_pixels`): they would give a wrong mask silently.
            precision: ``"fp32"`` (exact), or ``"bf16"``, ``"fp16"``, ``"auto"`` for mixed
                precision (``"auto"``: the fastest the hardware runs natively). Call
                :meth:`prepare_for_inference` with the same precision once for a further
                speed-up (a model with bf16 weights computes in bf16 whatever this says).

        Returns:
            ``[B, 1, H, W]`` float32 in [0, 1] on the model's device; threshold at 0.5 for a mask.
        """
        images = check_pixels(images)
        self._check_images(images)
        weight = next(self.parameters())  # all weights share one device and dtype
        images = images.to(weight.device, weight.dtype)
        with autocast(weight.device, resolve_precision(precision, weight.device)):
            mu = self.encoder.posterior(images).mode()
            return self.decode(self.lmm(mu)[-1]).float()

    def prepare_for_inference(self, precision: str = "fp32") -> WaveGMS:
        """Put this model, in place, in its fastest form for ``predict(..., precision)``.

        Eval mode always. With mixed precision also channels-last memory format, and where the
        precision resolves to bf16, bf16 weights: bf16 has fp32's exponent range, so storing the
        weights in it is as safe as autocasting them, and it saves casting every weight on every
        call (about 10% at batch 1 on a 2-core CPU). fp16 keeps fp32 weights under autocast.
        TAESD follows as this model's own converted copy (:attr:`tiny_vae`); the TAESD passed in
        is left as it was, for any other model that shares it. Returns the model.
        """
        self.eval()
        dtype = resolve_precision(precision, self.device)
        if dtype is not None:
            self.to(memory_format=torch.channels_last)
        if dtype == torch.bfloat16:
            self.bfloat16()
        return self

    # ---- saving and loading the trainable weights ---------------------------------------------

    def save_pretrained(self, save_directory: str | os.PathLike) -> None:
        """Write ``config.json`` + ``diffusion_pytorch_model.safetensors`` (diffusers' layout),
        each atomically; the weights first, so a folder with a config always has weights."""
        folder = Path(save_directory)
        state = {name: tensor.contiguous() for name, tensor in self.state_dict().items()}
        atomic_write_bytes(folder / WEIGHTS_NAME, safetensors_bytes(state, {"format": "pt"}))
        config = {"_class_name": type(self).__name__, **dataclasses.asdict(self.config)}
        atomic_write_json(folder / CONFIG_NAME, config)

    @classmethod
    def from_pretrained(
        cls, checkpoint: str | os.PathLike, tiny_vae: AutoencoderTiny | None = None
    ) -> WaveGMS:
        """Load weights saved by :meth:`save_pretrained` (a folder or a hub repo id).

        ``tiny_vae`` defaults to :func:`~wavegms.load_tiny_vae` (``$WAVEGMS_TAESD`` or the hub).
        Weights are read with safetensors: nothing is unpickled. A checkpoint whose tensors do not
        fit its own config raises ``ValueError`` naming the mismatching keys.
        """
        folder = Path(checkpoint).expanduser()
        if not folder.is_dir():
            if not is_hub_id(str(checkpoint)):
                raise FileNotFoundError(
                    f"No Wave-GMS checkpoint folder at {str(checkpoint)!r}: expected a folder with "
                    f"{CONFIG_NAME} and {WEIGHTS_NAME} (written by save_pretrained or by "
                    "`wavegms train`)."
                )
            from huggingface_hub import snapshot_download

            folder = Path(snapshot_download(str(checkpoint)))
        for name in (CONFIG_NAME, WEIGHTS_NAME):
            if not (folder / name).is_file():
                raise FileNotFoundError(
                    f"{str(folder)!r} is not a Wave-GMS checkpoint: {name} is missing."
                )
        class_name = read_json_object(folder / CONFIG_NAME).get("_class_name", cls.__name__)
        if class_name != cls.__name__:
            raise ValueError(f"{str(folder)!r} holds a {class_name}, not a {cls.__name__}.")
        config = load_dataclass(WaveGMSConfig, folder / CONFIG_NAME)
        model = cls(tiny_vae, **dataclasses.asdict(config))
        # Read here, not by safetensors' load_file: it calls any file it cannot open "No such
        # file or directory", even one that exists but may not be read.
        data = read_bytes(folder / WEIGHTS_NAME)
        try:
            state = load_safetensors(data)
        except Exception as error:  # SafetensorError: truncated, empty, a pickle, not weights
            raise ValueError(
                f"{folder / WEIGHTS_NAME} is damaged or not a safetensors file ({error}): "
                "copy the checkpoint again, or save it with WaveGMS.save_pretrained."
            ) from None
        expected = model.state_dict()
        missing = [k for k in expected if k not in state or state[k].shape != expected[k].shape]
        unexpected = [k for k in state if k not in expected]
        if missing or unexpected:
            raise ValueError(
                f"The weights in {str(folder / WEIGHTS_NAME)!r} do not match the model of its "
                f"config (missing {missing[:5]}, unexpected {unexpected[:5]}): the checkpoint "
                "comes from another configuration or was edited."
            )
        model.load_state_dict(state)
        return model


__all__ = [
    "HEAD_NAMES",
    "PIXEL_TOLERANCE",
    "WaveGMS",
    "WaveGMSConfig",
    "WaveGMSOutput",
    "check_pixels",
]
