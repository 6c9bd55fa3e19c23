import pytest
import torch

from wavegms.utils.device import autocast, get_device, resolve_precision


def test_explicit_and_automatic_choices(monkeypatch):
    assert get_device("cpu") == torch.device("cpu")
    monkeypatch.setenv("WAVEGMS_DEVICE", "cpu")
    assert get_device() == torch.device("cpu")
    monkeypatch.delenv("WAVEGMS_DEVICE")
    expected = "cuda" if torch.cuda.is_available() else None
    if expected:
        assert get_device().type == "cuda"
    else:
        assert get_device().type in ("cpu", "mps")


def test_asking_for_a_gpu_gives_it_or_explains_what_to_do():
    if torch.cuda.is_available():
        assert get_device("cuda").type == "cuda"
    else:
        with pytest.raises(RuntimeError, match="Change runtime type"):
            get_device("cuda")


def test_precisions():
    cpu = torch.device("cpu")
    assert resolve_precision("fp32", cpu) is None
    assert resolve_precision("bf16", cpu) is torch.bfloat16
    assert resolve_precision("auto", cpu) in (None, torch.bfloat16)
    with pytest.raises(ValueError, match="fp16 autocast is not supported on CPU"):
        resolve_precision("fp16", cpu)
    with pytest.raises(ValueError, match="precision must be one of"):
        resolve_precision("fp8", cpu)
    with autocast(cpu, torch.bfloat16):
        assert torch.ones(2, 2).matmul(torch.ones(2, 2)).dtype == torch.bfloat16
    with autocast(cpu, None):
        assert torch.ones(2, 2).matmul(torch.ones(2, 2)).dtype == torch.float32
