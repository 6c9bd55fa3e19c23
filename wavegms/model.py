"""Wave-GMS: wavelet encoder -> latent mapping model -> frozen Tiny-VAE decoder (SPEC 1).

The trainable part (encoder + LMM, 2,595,804 parameters in the paper configuration) is a diffusers
``ModelMixin``/``ConfigMixin``: ``save_pretrained`` writes ``config.json`` plus safetensors and
``from_pretrained`` reads them back without unpickling anything. The frozen TAESD is *attached*,
not owned: it is not a registered submodule, so it never appears in ``parameters()``, in an
optimizer or in a saved checkpoint, and ``model.train()`` cannot switch it out of eval mode.
It still follows the model across ``.to()``, ``.cuda()`` and dtype casts.
"""

from __future__ import annotations

import inspect
import json
import os
import re
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from diffusers import AutoencoderTiny, ConfigMixin, ModelMixin
from diffusers.utils import BaseOutput
from huggingface_hub import snapshot_download
from safetensors.torch import load_file
from torch.utils.checkpoint import checkpoint

from .device import autocast, resolve_precision
from .encoder import MultiResolutionEncoder
from .lmm import HEAD_NAMES, LatentMappingModel
from .tiny_vae import load_tiny_vae


@dataclass
class WaveGMSOutput(BaseOutput):
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


class WaveGMS(ModelMixin, ConfigMixin):
    """The Wave-GMS segmentation model.

    ``WaveGMS(tiny_vae)`` builds the paper configuration around a frozen TAESD
    (from :func:`~wavegms.load_tiny_vae`); ``WaveGMS()`` loads TAESD from ``$WAVEGMS_TAESD`` or the
    hub. Images are ``[B, 3, H, W]`` in [0, 1] with H and W multiples of 8; masks ``[B, 1, H, W]``
    in {0, 1}.
    """

    config_name = "config.json"
    ignore_for_config = ["tiny_vae"]
    _supports_gradient_checkpointing = True  # enable_gradient_checkpointing(): see forward()

    def __init__(
        self,
        tiny_vae: AutoencoderTiny | None = None,
        in_channels: int = 3,
        latent_channels: int = 4,
        wavelet_levels: int = 3,
        encoder_base_channels: int = 16,
        encoder_channel_mult: Sequence[int] = (1, 2, 2),
        encoder_blocks_per_stage: int = 2,
        lmm_base_channels: int = 32,
        lmm_channel_mult: Sequence[int] = (1, 2, 4, 4),
        image_size: int = 224,
    ) -> None:
        super().__init__()
        # Registered by hand: diffusers' decorator mis-assigns a positional ``tiny_vae``.
        self.register_to_config(
            in_channels=in_channels,
            latent_channels=latent_channels,
            wavelet_levels=wavelet_levels,
            encoder_base_channels=encoder_base_channels,
            encoder_channel_mult=list(encoder_channel_mult),
            encoder_blocks_per_stage=encoder_blocks_per_stage,
            lmm_base_channels=lmm_base_channels,
            lmm_channel_mult=list(lmm_channel_mult),
            image_size=image_size,
        )
        if wavelet_levels != 3:
            # TAESD downsamples by 8 = 2^3: the pyramid's coarsest level must match its latents.
            raise ValueError(
                f"wavelet_levels must be 3 to match TAESD's x8 latents, got {wavelet_levels}"
            )
        self.encoder = MultiResolutionEncoder(
            in_channels,
            latent_channels,
            wavelet_levels,
            encoder_base_channels,
            tuple(encoder_channel_mult),
            encoder_blocks_per_stage,
        )
        self.lmm = LatentMappingModel(latent_channels, lmm_base_channels, tuple(lmm_channel_mult))
        self.gradient_checkpointing = False
        self.attach_tiny_vae(tiny_vae if tiny_vae is not None else load_tiny_vae())

    # ---- the frozen Tiny-VAE ------------------------------------------------------------------

    def attach_tiny_vae(self, tiny_vae: AutoencoderTiny) -> None:
        """Use ``tiny_vae`` (frozen here) as this model's latent space, on the model's device."""
        tiny_vae.requires_grad_(False).eval()
        # object.__setattr__ keeps it out of nn.Module's registry: no params, no state_dict.
        object.__setattr__(self, "tiny_vae", tiny_vae.to(next(self.parameters()).device))

    def _apply(self, fn, recurse: bool = True):  # noqa: ANN001 - nn.Module's signature
        super()._apply(fn, recurse)
        self.tiny_vae._apply(fn)
        return self

    def train(self, mode: bool = True) -> WaveGMS:
        super().train(mode)
        self.tiny_vae.eval()
        return self

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
        """Mask latents ``[N, 4, h, w]`` -> foreground probabilities ``[N, 1, 8h, 8w]`` in [0, 1].

        TAESD decodes to RGB in [-1, 1]; the probability is its channel mean mapped to [0, 1],
        clamped. Differentiable with respect to ``mask_latents``.
        """
        # TAESD's decoder is tanh(z / 3) * 3 -> layers -> y, and its output 2y - 1, so the
        # probability (mean(2y - 1) + 1) / 2 is mean(y): the channel mean of the last 3 x 3 conv,
        # which is one conv with the mean filter. Running that instead of the RGB conv and three
        # elementwise passes saves ~6% of a decode (tests/test_model.py checks the identity).
        *body, to_rgb = self.tiny_vae.decoder.layers
        features = torch.tanh(mask_latents / 3) * 3
        for layer in body:
            features = layer(features)
        mean_filter = to_rgb.weight.mean(dim=0, keepdim=True)
        mean_bias = to_rgb.bias.mean(dim=0, keepdim=True)
        probs = F.conv2d(features, mean_filter, mean_bias, to_rgb.stride, to_rgb.padding)
        return probs.clamp(0, 1)

    # ---- forward passes -----------------------------------------------------------------------

    def _check_images(self, images: torch.Tensor) -> None:
        if images.ndim != 4 or images.shape[1] != self.config.in_channels:
            hint = (
                " Grey images: repeat them to 3 channels, e.g. images.expand(-1, 3, -1, -1)."
                if images.ndim == 4 and images.shape[1] == 1
                else ""
            )
            raise ValueError(
                f"Wave-GMS expects images of shape [B, {self.config.in_channels}, H, W], got "
                f"{tuple(images.shape)}.{hint}"
            )
        height, width = images.shape[-2:]
        if height % 8 or width % 8:
            raise ValueError(
                f"Image size {height}x{width} is not divisible by 8 (TAESD works at 1/8 "
                "resolution): resize to a multiple of 8, e.g. 224x224."
            )

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
        mu, logvar = self.encoder(images)
        if self.training:
            # Not randn_like: its values would follow mu's memory format (channels-last or not).
            noise = torch.randn(mu.shape, dtype=mu.dtype, device=mu.device)
            latent = mu + torch.exp(0.5 * logvar) * noise
        else:
            latent = mu
        mask_latents = self.lmm(latent)
        if masks is None:
            return WaveGMSOutput(mask_latents=mask_latents, latent=latent, mu=mu, logvar=logvar)
        if masks.shape[-2:] != images.shape[-2:] or masks.shape[:2] != (images.shape[0], 1):
            raise ValueError(
                f"masks must be [B, 1, H, W] matching images {tuple(images.shape)}, got "
                f"{tuple(masks.shape)}"
            )
        teacher_latent, mask_latent = self.encode_targets(images, masks)
        if torch.is_grad_enabled() and self.gradient_checkpointing:
            # enable_gradient_checkpointing(): one checkpointed decode per head. The backward
            # pass recomputes one head's decoder activations at a time and frees them before
            # the next, so the peak holds one head's instead of all three.
            mask_probs = torch.stack(
                [checkpoint(self.decode, z, use_reentrant=False) for z in mask_latents]
            )
        else:
            # One decoder call over all heads: [K*B, 4, h, w] -> [K, B, 1, H, W].
            mask_probs = self.decode(torch.cat(mask_latents)).unflatten(0, (len(mask_latents), -1))
        return WaveGMSOutput(
            mask_latents=mask_latents,
            latent=latent,
            mu=mu,
            logvar=logvar,
            teacher_latent=teacher_latent,
            mask_latent=mask_latent,
            mask_probs=mask_probs,
        )

    @torch.inference_mode()
    def predict(self, images: torch.Tensor, precision: str = "fp32") -> torch.Tensor:
        """Foreground probabilities for a batch of images, deterministic (encoder mean).

        Args:
            images: ``[B, 3, H, W]`` float in [0, 1], any device (moved to the model's).
            precision: ``"fp32"`` (exact), or ``"bf16"``, ``"fp16"``, ``"auto"`` for mixed
                precision (``"auto"``: the fastest the hardware runs natively). Call
                :meth:`prepare_for_inference` with the same precision once for a further
                speed-up (a model with bf16 weights computes in bf16 whatever this says).

        Returns:
            ``[B, 1, H, W]`` float32 in [0, 1] on the model's device; threshold at 0.5 for a mask.
        """
        self._check_images(images)
        # All weights share one device and dtype. Not self.device / self.dtype: ModelMixin's walk
        # every submodule looking for hooks, ~1 ms each, 4% of a batch-1 prediction on a CPU.
        weight = next(self.parameters())
        images = images.to(weight.device, weight.dtype)
        with autocast(weight.device, resolve_precision(precision, weight.device)):
            mu, _ = self.encoder(images)
            return self.decode(self.lmm(mu)[-1]).float()

    def prepare_for_inference(self, precision: str = "fp32") -> WaveGMS:
        """Put this model, in place, in its fastest form for ``predict(..., precision)``.

        Eval mode always. With mixed precision also channels-last memory format, and where the
        precision resolves to bf16, bf16 weights: bf16 has fp32's exponent range, so storing the
        weights in it is as safe as autocasting them, and it saves casting every weight on every
        call (about 10% at batch 1 on a 2-core CPU). fp16 keeps fp32 weights under autocast.
        The attached TAESD is converted with the model. Returns the model.
        """
        self.eval()
        dtype = resolve_precision(precision, self.device)
        if dtype is not None:
            self.to(memory_format=torch.channels_last)
        if dtype == torch.bfloat16:
            self.bfloat16()  # not .to(bfloat16): diffusers' to() warns about fp32 modules we lack
        return self

    # ---- saving and loading the trainable weights ---------------------------------------------

    def save_pretrained(self, save_directory: str | os.PathLike, **kwargs) -> None:
        """Write ``config.json`` + ``diffusion_pytorch_model.safetensors`` atomically.

        Files are written to a temporary folder beside the target and moved in one by one with
        ``os.replace``, so an interruption never leaves a half-written checkpoint.
        """
        target = Path(save_directory)
        target.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
        try:
            super().save_pretrained(staging, safe_serialization=True, **kwargs)
            for file in staging.iterdir():
                os.replace(file, target / file.name)
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    @classmethod
    def from_pretrained(
        cls, checkpoint: str | os.PathLike, tiny_vae: AutoencoderTiny | None = None
    ) -> WaveGMS:
        """Load trainable weights saved by :meth:`save_pretrained` (a folder or a hub repo id).

        ``tiny_vae`` defaults to :func:`~wavegms.load_tiny_vae` (``$WAVEGMS_TAESD`` or the hub).
        Weights are read with safetensors: nothing is unpickled. A checkpoint whose tensors do not
        fit its own config raises ``ValueError`` naming the mismatching keys.
        """
        folder = Path(checkpoint).expanduser()
        if not folder.is_dir():
            if folder.exists() or not _is_hub_id(str(checkpoint)):
                raise FileNotFoundError(
                    f"No Wave-GMS checkpoint folder at {str(checkpoint)!r}: expected a folder with "
                    f"{cls.config_name} and {WEIGHTS_NAME} (written by save_pretrained or by "
                    "`wavegms train`)."
                )
            folder = Path(snapshot_download(str(checkpoint)))
        config_file, weights_file = folder / cls.config_name, folder / WEIGHTS_NAME
        for file in (config_file, weights_file):
            if not file.is_file():
                raise FileNotFoundError(
                    f"{str(folder)!r} is not a Wave-GMS checkpoint: {file.name} is missing."
                )
        config = json.loads(config_file.read_text())
        if config.get("_class_name", cls.__name__) != cls.__name__:
            raise ValueError(
                f"{str(folder)!r} holds a {config['_class_name']}, not a {cls.__name__}."
            )
        init_keys = set(inspect.signature(cls.__init__).parameters) - {"self", "tiny_vae"}
        model = cls(tiny_vae, **{k: v for k, v in config.items() if k in init_keys})
        state = load_file(weights_file)
        missing, unexpected = _state_mismatch(model.state_dict(), state)
        if missing or unexpected:
            raise ValueError(
                f"The weights in {str(weights_file)!r} do not match the model of its config "
                f"(missing {missing[:5]}, unexpected {unexpected[:5]}): the checkpoint comes from "
                "another configuration or was edited."
            )
        model.load_state_dict(state)
        return model


WEIGHTS_NAME = "diffusion_pytorch_model.safetensors"


def _is_hub_id(name: str) -> bool:
    return re.fullmatch(r"[\w.-]+/[\w.-]+", name) is not None


def _state_mismatch(
    expected: dict[str, torch.Tensor], found: dict[str, torch.Tensor]
) -> tuple[list[str], list[str]]:
    missing = [k for k in expected if k not in found or found[k].shape != expected[k].shape]
    return missing, [k for k in found if k not in expected]


__all__ = ["HEAD_NAMES", "WaveGMS", "WaveGMSOutput"]
