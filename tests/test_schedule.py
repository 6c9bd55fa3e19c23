"""The warm-up + cosine learning-rate schedule, starting above zero (paper_map "Training")."""

from __future__ import annotations

import io

import pytest
import torch

from wavegms.engine.schedule import lr_factor, sync_lr, warmup_cosine


@pytest.mark.parametrize(("warmup", "epochs"), [(5, 1000), (5, 300), (1, 8), (0, 10), (5, 7)])
def test_warmup_starts_above_zero_peaks_then_decays_to_zero(warmup, epochs):
    factors = [lr_factor(e, warmup, epochs) for e in range(epochs)]
    assert factors[0] > 0, "the first epoch must learn"
    peak = factors.index(max(factors))
    assert factors[peak] == pytest.approx(1.0)
    assert peak == min(warmup, epochs - 1)
    ramp, decay = factors[: peak + 1], factors[peak:]
    assert all(a < b for a, b in zip(ramp, ramp[1:])), "warm-up must increase"
    assert all(a > b for a, b in zip(decay, decay[1:])), "cosine must decrease"
    # 0.5 * (1 - cos(pi / n)) <= (pi / n)^2 / 4 for the n epochs after the peak.
    assert 0 < factors[-1] <= 2.5 / (epochs - peak) ** 2, "last epoch ~0 but still learning"
    assert lr_factor(epochs, warmup, epochs) == pytest.approx(0.0, abs=1e-12)


def test_paper_schedule_values():
    # 5 warm-up epochs: 1/6 ... 5/6 of the base lr, the base lr at epoch 5, half way at 502.5.
    assert [lr_factor(e, 5, 1000) for e in range(6)] == pytest.approx(
        [1 / 6, 2 / 6, 3 / 6, 4 / 6, 5 / 6, 1]
    )
    assert lr_factor(5 + 995 // 2, 5, 1000) == pytest.approx(0.5, abs=2e-3)


def test_single_epoch_runs_at_base_lr():
    assert lr_factor(0, 5, 1) == 1.0


def _optimizer(lr: float = 2e-3) -> torch.optim.Optimizer:
    return torch.optim.AdamW([torch.nn.Parameter(torch.zeros(3))], lr=lr)


def test_scheduler_follows_lr_factor_per_epoch():
    optimizer = _optimizer()
    scheduler = warmup_cosine(optimizer, 2, 6)
    seen = []
    for _ in range(6):
        seen.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert seen == pytest.approx([2e-3 * lr_factor(e, 2, 6) for e in range(6)])


def test_scheduler_state_resumes_and_extends():
    optimizer = _optimizer()
    scheduler = warmup_cosine(optimizer, 1, 4)
    for _ in range(4):
        optimizer.step()
        scheduler.step()
    buffer = io.BytesIO()
    torch.save({"opt": optimizer.state_dict(), "sched": scheduler.state_dict()}, buffer)
    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)  # plain data only: safe to load

    # Same length: continues where it stopped.
    same_opt = _optimizer()
    same = warmup_cosine(same_opt, 1, 4)
    same_opt.load_state_dict(state["opt"])
    same.load_state_dict(state["sched"])
    sync_lr(same)
    assert same.last_epoch == 4
    assert same_opt.param_groups[0]["lr"] == pytest.approx(0.0, abs=1e-15)

    # Extended to 8 epochs: epoch 4 takes its lr from the new schedule, not the saved lr.
    long_opt = _optimizer()
    longer = warmup_cosine(long_opt, 1, 8)
    long_opt.load_state_dict(state["opt"])
    longer.load_state_dict(state["sched"])
    sync_lr(longer)
    assert long_opt.param_groups[0]["lr"] == pytest.approx(2e-3 * lr_factor(4, 1, 8))
    assert longer.get_last_lr() == pytest.approx([2e-3 * lr_factor(4, 1, 8)])
    long_opt.step()
    longer.step()
    assert long_opt.param_groups[0]["lr"] == pytest.approx(2e-3 * lr_factor(5, 1, 8))


def test_rejects_no_epochs():
    with pytest.raises(ValueError, match="epochs"):
        warmup_cosine(_optimizer(), 5, 0)
