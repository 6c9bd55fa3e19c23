"""``wavegms.utils.device``: the device and autocast precision chosen for each machine. The
hardware is simulated (CUDA, MPS and the CPU's bf16 support monkeypatched), so every test
asserts the one right answer, on any machine."""

from __future__ import annotations

import contextlib
import warnings

import pytest
import torch

from wavegms.utils import device as device_module
from wavegms.utils.device import autocast, get_device, grad_scaler, resolve_precision


@pytest.fixture
def machine(monkeypatch):  # noqa: ANN001, ANN201
    """``machine(cuda=..., mps=...)`` makes this process see that hardware (no GPU unless
    asked, ``WAVEGMS_DEVICE`` and ``LOCAL_RANK`` unset)."""
    monkeypatch.delenv("WAVEGMS_DEVICE", raising=False)
    monkeypatch.delenv("LOCAL_RANK", raising=False)

    def simulate(cuda: bool = False, mps: bool = False) -> None:
        monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
        monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
        monkeypatch.setattr(device_module, "_mps_works", lambda: mps)

    simulate()
    return simulate


def test_automatic_choice_is_cuda_then_mps_then_cpu(machine, monkeypatch):
    assert get_device() == get_device("auto") == torch.device("cpu")
    machine(mps=True)
    assert get_device() == torch.device("mps")
    machine(cuda=True, mps=True)
    assert get_device() == torch.device("cuda", 0)
    monkeypatch.setenv("LOCAL_RANK", "1")  # a torchrun process uses its own GPU
    assert get_device() == torch.device("cuda", 1)


def test_an_explicit_choice_or_the_environment_wins(machine, monkeypatch):
    machine(cuda=True)
    assert get_device("cpu") == torch.device("cpu")
    monkeypatch.setenv("WAVEGMS_DEVICE", "cpu")
    assert get_device() == get_device("auto") == torch.device("cpu")
    assert get_device("cuda:1") == torch.device("cuda", 1)  # the argument beats the variable


def test_asking_for_a_missing_gpu_explains_what_to_do(machine):
    with pytest.raises(RuntimeError, match="sees no CUDA GPU.*Change runtime type"):
        get_device("cuda")
    with pytest.raises(RuntimeError, match="'mps' was requested but MPS is not usable"):
        get_device("mps")
    machine(cuda=True, mps=True)
    assert get_device("cuda") == torch.device("cuda")
    assert get_device("mps") == torch.device("mps")


def test_explicit_precisions():
    cpu = torch.device("cpu")
    assert resolve_precision("fp32", cpu) is None
    assert resolve_precision("bf16", cpu) is torch.bfloat16
    assert resolve_precision("fp16", torch.device("cuda")) is torch.float16
    with pytest.raises(ValueError, match="precision must be one of"):
        resolve_precision("fp8", cpu)


@pytest.mark.parametrize("supported", [True, False])
def test_fp16_on_cpu_where_this_pytorch_runs_it(monkeypatch, supported):
    monkeypatch.setattr(device_module, "_cpu_fp16_works", lambda: supported)
    cpu = torch.device("cpu")
    if supported:
        assert resolve_precision("fp16", cpu) is torch.float16
    else:
        with pytest.raises(ValueError, match="fp16 autocast is not supported on CPU by PyTorch"):
            resolve_precision("fp16", cpu)


def test_the_cpu_fp16_probe_needs_fp16_autocast_and_a_cpu_gradient_scaler(monkeypatch):
    probe = device_module._cpu_fp16_works
    with torch.autocast("cpu", dtype=torch.float16):  # what this PyTorch does, asked directly
        native = torch.ones(1, 1).matmul(torch.ones(1, 1)).dtype == torch.float16
    probe.cache_clear()
    assert probe() == (native and hasattr(torch.amp, "GradScaler"))

    def old_autocast(device_type, dtype):  # noqa: ANN001, ANN202 - CPU autocast before 2.5
        warnings.warn("In CPU autocast, but the target dtype is not supported.", stacklevel=2)
        return contextlib.nullcontext()

    monkeypatch.setattr(torch, "autocast", old_autocast)
    probe.cache_clear()
    assert probe() is False
    monkeypatch.undo()
    monkeypatch.delattr(torch.amp, "GradScaler")  # before 2.3: no CPU scaler at all
    probe.cache_clear()
    assert probe() is False
    with pytest.raises(ValueError, match="fp16 autocast is not supported on CPU"):
        resolve_precision("fp16", torch.device("cpu"))
    monkeypatch.undo()
    probe.cache_clear()


@pytest.mark.parametrize("native_bf16", [True, False])
def test_auto_precision_on_cpu_is_bf16_only_where_it_is_native(monkeypatch, native_bf16):
    monkeypatch.setattr(device_module, "_cpu_has_native_bf16", lambda: native_bf16)
    expected = torch.bfloat16 if native_bf16 else None
    assert resolve_precision("auto", torch.device("cpu")) is expected


@pytest.mark.parametrize(
    ("capability", "expected"),
    [
        ((7, 5), torch.float16),
        ((7, 0), torch.float16),
        ((8, 0), torch.bfloat16),
        ((9, 0), torch.bfloat16),
    ],
)
def test_auto_precision_on_a_gpu_is_bf16_from_ampere_on_else_fp16(
    monkeypatch, capability, expected
):
    # torch.cuda.is_bf16_supported() counts emulation: it says True on a T4 (sm_75).
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: True)
    asked = []

    def capability_of(device=None):  # noqa: ANN001, ANN202
        asked.append(device)
        return capability if device == torch.device("cuda", 1) else (9, 0)

    monkeypatch.setattr(torch.cuda, "get_device_capability", capability_of)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    assert resolve_precision("auto", torch.device("cuda", 1)) is expected
    assert asked == [torch.device("cuda", 1)]  # the device given, not the current one


def test_auto_precision_elsewhere_is_fp32():
    assert resolve_precision("auto", torch.device("mps")) is None


def test_autocast_runs_in_the_precision_given():
    cpu = torch.device("cpu")
    with autocast(cpu, torch.bfloat16):
        assert torch.ones(2, 2).matmul(torch.ones(2, 2)).dtype == torch.bfloat16
    with autocast(cpu, None):
        assert torch.ones(2, 2).matmul(torch.ones(2, 2)).dtype == torch.float32


def test_the_fp16_gradient_scaler_also_exists_before_torch_2_3(monkeypatch):
    cuda = torch.device("cuda")
    with warnings.catch_warnings():  # without a GPU the scaler says it is disabled
        warnings.simplefilter("ignore")
        assert type(grad_scaler(cuda)) is torch.amp.GradScaler
        monkeypatch.delattr(torch.amp, "GradScaler")  # torch 2.2 has only the CUDA one
        assert isinstance(grad_scaler(cuda), torch.cuda.amp.GradScaler)


@pytest.mark.parametrize("asked", ["cuda", "cuda:0", "cuda:3"])
def test_each_torchrun_rank_drives_its_own_gpu_whatever_index_was_saved(monkeypatch, asked):
    from wavegms.engine import distributed

    bound = []
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setattr(torch.cuda, "set_device", bound.append)
    monkeypatch.setattr(distributed.dist, "is_initialized", lambda: True)  # a launcher's group
    world, device = distributed.setup(torch.device(asked))
    assert device == torch.device("cuda", 1) and bound == [torch.device("cuda", 1)]
    assert world.rank == 1 and not world.owns_group
