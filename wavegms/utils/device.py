"""The one place that chooses where tensors live and which precision autocast uses.

Every other module asks :func:`get_device` instead of naming ``"cuda"``, so the same code runs
on a Colab T4, a multi-GPU server, an Apple laptop or a plain CPU.
"""

from __future__ import annotations

import contextlib
import functools
import os
import warnings

import torch

PRECISIONS = ("fp32", "bf16", "fp16", "auto")
# What each autocast dtype of :func:`resolve_precision` is called in messages (None: plain fp32).
PRECISION_NAMES = {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}


def _mps_works() -> bool:
    # MPS is reported on Intel Macs and old macOS where kernels we need are missing; probe once.
    if not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
        return False
    try:
        x = torch.ones(2, 2, device="mps")
        torch.nn.functional.group_norm(x[None, :, :, None], 1)
        return True
    except Exception:
        return False


def get_device(preferred: str | torch.device | None = None) -> torch.device:
    """The device to run on: ``preferred`` if given, else CUDA, else MPS where it works, else CPU.

    ``preferred`` accepts anything :class:`torch.device` does (``"cpu"``, ``"cuda:1"``) and
    ``"auto"``. The environment variable ``WAVEGMS_DEVICE`` overrides the automatic choice.
    Under ``torchrun`` the CUDA device is the process's ``LOCAL_RANK``.
    """
    if preferred is None or str(preferred) == "auto":
        preferred = os.environ.get("WAVEGMS_DEVICE") or None
    if preferred is not None and str(preferred) != "auto":
        device = torch.device(preferred)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError(
                f"Device {str(preferred)!r} was requested but PyTorch sees no CUDA GPU. "
                "In Colab choose Runtime > Change runtime type > T4 GPU, or use device 'cpu'."
            )
        if device.type == "mps" and not _mps_works():
            raise RuntimeError(
                f"Device {str(preferred)!r} was requested but MPS is not usable here."
            )
        return device
    if torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", torch.cuda.current_device())))
    if _mps_works():
        return torch.device("mps")
    return torch.device("cpu")


def resolve_precision(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for ``precision`` on ``device``; ``None`` means plain fp32.

    ``"auto"`` picks bf16 where the hardware runs it natively (Ampere+ GPUs, CPUs with
    AVX512-BF16/AMX), fp16 on older GPUs such as the T4, and fp32 elsewhere. ``"fp16"`` on a
    CPU needs a PyTorch that autocasts to fp16 there and has a CPU gradient scaler (2.5 and
    later do; training there is slow, for tests and trials); elsewhere it raises ``ValueError``.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if precision == "fp32":
        return None
    if precision == "bf16":
        return torch.bfloat16
    if precision == "fp16":
        if device.type == "cpu" and not _cpu_fp16_works():
            raise ValueError(
                f"fp16 autocast is not supported on CPU by PyTorch {torch.__version__}; use "
                "precision 'bf16' or 'fp32' (or a PyTorch that runs fp16 on CPU)."
            )
        return torch.float16
    # auto
    if device.type == "cuda":
        return torch.bfloat16 if _cuda_has_native_bf16(device) else torch.float16
    if device.type == "cpu" and _cpu_has_native_bf16():
        return torch.bfloat16
    return None


def _cuda_has_native_bf16(device: torch.device) -> bool:
    """Whether ``device`` (not the current one) runs bf16 in hardware: compute capability 8.0
    (Ampere) or newer. ``torch.cuda.is_bf16_supported()`` also counts emulation, and says True
    on a T4 (sm_75), where cuDNN has no bf16 kernels: fp16 with a GradScaler is the fast path."""
    major, _ = torch.cuda.get_device_capability(device)
    return major >= 8


@functools.cache  # the answer cannot change, and reading /proc/cpuinfo costs ~35 us a call
def _cpu_has_native_bf16() -> bool:
    try:
        return bool(torch.backends.cpu.get_cpu_capability() in ("AVX512_BF16", "AMX")) or (
            "avx512_bf16" in open("/proc/cpuinfo").read()
        )
    except OSError:
        return False


@functools.cache  # a probe of this PyTorch build: the answer cannot change
def _cpu_fp16_works() -> bool:
    """Whether this PyTorch trains in fp16 on CPU: autocast to fp16 there (older builds warn
    and fall back to fp32) and a CPU gradient scaler (``torch.amp.GradScaler("cpu")``), probed
    with one tiny scaled step."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "CPU autocast ... not supported": False below
            weight = torch.nn.Parameter(torch.ones(1, 1, 1, 1))
            with torch.autocast("cpu", dtype=torch.float16):
                out = torch.nn.functional.conv2d(torch.ones(1, 1, 2, 2), weight)
            scaler = torch.amp.GradScaler("cpu")
            optimizer = torch.optim.SGD([weight], lr=0.1)
            scaler.scale(out.float().sum()).backward()
            scaler.step(optimizer)
            scaler.update()
        return out.dtype == torch.float16
    except Exception:  # no torch.amp.GradScaler, no CPU kernels for it...
        return False


def grad_scaler(device: torch.device) -> torch.amp.GradScaler:
    """A gradient scaler for fp16 training on ``device`` (fp16 gradients underflow without one).

    ``torch.amp.GradScaler`` exists from torch 2.3; wavegms allows torch 2.2, whose scaler is
    ``torch.cuda.amp.GradScaler`` (CUDA only, which is where fp16 autocast runs).
    """
    if hasattr(torch.amp, "GradScaler"):
        return torch.amp.GradScaler(device.type)
    return torch.cuda.amp.GradScaler()  # torch < 2.3


def autocast(device: torch.device, dtype: torch.dtype | None) -> contextlib.AbstractContextManager:
    """``torch.autocast`` for ``dtype`` on ``device``, or a no-op context for fp32 (``None``)."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)
