"""fp16 training with a gradient scaler, on the CPU (where this PyTorch runs fp16 autocast): a
step whose loss overflows is skipped and left out of the epoch's losses instead of ending the
run, the record counts the skipped updates, and a resumed run continues with the saved scale.
Without a scaler a non-finite loss still fails the epoch."""

from __future__ import annotations

import math

import pytest
import torch

import wavegms.engine.train
from wavegms.engine.checkpoint import load_training_state
from wavegms.engine.config import preset
from wavegms.engine.distributed import World
from wavegms.engine.measures import LOSS_KEYS, EpochLosses
from wavegms.engine.train import train
from wavegms.utils.device import resolve_precision

INIT_SCALE = 1024.0  # low enough that this tiny model's gradients never overflow in fp16


def fp16_config(**overrides):  # noqa: ANN003, ANN201
    # 6 items / batch 2: 3 steps an epoch (fp16 on a CPU is emulated, ~2 s a step).
    settings = {"image_size": 32, "synthetic_sizes": (6, 2, 2), "batch_size": 2, "epochs": 1}
    return preset("quick", device="cpu", precision="fp16", **{**settings, **overrides})


class Steps:
    """Wraps ``optimisation_step``: makes the loss of step ``overflow_at`` (1-based) infinite
    and notes, per step, the loss, whether the weights changed and the scaler's state."""

    def __init__(self, overflow_at: int | None = None) -> None:
        self.overflow_at, self.seen = overflow_at, []
        self.original = wavegms.engine.train.optimisation_step

    def __call__(self, model, loss_fn, optimizer, images, masks, **kwargs):  # noqa: ANN001, ANN003, ANN204
        scaler_state = kwargs["scaler"].state_dict()  # before the step: what it starts from
        if len(self.seen) + 1 == self.overflow_at:
            loss_fn = overflowing(loss_fn)
        weights = [p for p in model.parameters() if p.requires_grad]
        before = [p.detach().clone() for p in weights]
        losses = self.original(model, loss_fn, optimizer, images, masks, **kwargs)
        updated = any(not torch.equal(a, p) for a, p in zip(before, weights))
        loss = losses["total"].item()
        self.seen.append({"loss": loss, "items": len(images), "updated": updated})
        self.seen[-1]["scaler"] = scaler_state
        return losses


def overflowing(loss_fn):  # noqa: ANN001, ANN201
    """``loss_fn`` with every term infinite, as an fp16 overflow in the forward pass makes it."""

    def overflowed(*args):  # noqa: ANN002, ANN202
        return {key: value * math.inf for key, value in loss_fn(*args).items()}

    return overflowed


@pytest.fixture
def low_init_scale(monkeypatch):  # noqa: ANN001, ANN201
    # With the default initial scale (2**16) the gradients of the first few steps overflow, as
    # fp16 gradients routinely do until the scaler has lowered its scale: every step would be
    # skipped, the injected overflow among them.
    monkeypatch.setattr(
        wavegms.engine.train,
        "grad_scaler",
        lambda device: torch.amp.GradScaler(device.type, init_scale=INIT_SCALE),
    )


def test_an_overflowing_fp16_step_is_skipped_and_a_resume_keeps_the_scale(
    tiny_vae, tmp_path, monkeypatch, low_init_scale
):
    assert resolve_precision("fp16", torch.device("cpu")) is torch.float16  # PyTorch >= 2.5
    steps = Steps(overflow_at=2)
    monkeypatch.setattr(wavegms.engine.train, "optimisation_step", steps)
    run_dir = tmp_path / "run"
    result = train(fp16_config(), run_dir, progress=False, tiny_vae=tiny_vae)

    # The run went on; the overflowing step changed no weight, the others did.
    assert [s["updated"] for s in steps.seen] == [True, False, True]
    assert math.isinf(steps.seen[1]["loss"])
    record = result.history[0]
    assert record["skipped_steps"] == 1
    # The epoch's loss is the mean over the finite steps only.
    finite = [s for s in steps.seen if math.isfinite(s["loss"])]
    expected = sum(s["loss"] * s["items"] for s in finite) / sum(s["items"] for s in finite)
    assert record["train_loss"] == pytest.approx(expected, rel=1e-5)

    # The scaler halved its scale at the overflow and counted one good step since.
    saved = load_training_state(run_dir / "last" / "training_state.pt")["scaler"]
    assert (saved["scale"], saved["_growth_tracker"]) == (INIT_SCALE / 2, 1)

    # Resumed, the first step starts from the saved scaler, not a fresh one.
    resumed_steps = Steps()
    monkeypatch.setattr(wavegms.engine.train, "optimisation_step", resumed_steps)
    resumed = train(fp16_config(epochs=2), run_dir, resume=True, progress=False, tiny_vae=tiny_vae)
    first = resumed_steps.seen[0]["scaler"]
    assert (first["scale"], first["_growth_tracker"]) == (INIT_SCALE / 2, 1)
    assert [r["skipped_steps"] for r in resumed.history] == [1, 0]


def losses(total: float) -> dict[str, torch.Tensor]:
    return {key: torch.tensor(total if key == "total" else 1.0) for key in LOSS_KEYS}


def test_epoch_losses_leave_out_non_finite_steps_only_with_a_scaler():
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    scaled = EpochLosses(torch.device("cpu"), optimizer)
    for total, items in ((2.0, 4), (math.inf, 4), (math.nan, 2), (5.0, 2)):
        scaled.add(losses(total), items)
    optimizer.step()  # as the scaler would for the two finite steps
    optimizer.step()
    record = scaled.record(0, 1e-3, World())
    assert record["train_loss"] == pytest.approx((2 * 4 + 5 * 2) / 6)
    assert record["skipped_steps"] == 2
    # The next epoch starts from zero.
    scaled.add(losses(3.0), 1)
    optimizer.step()
    assert scaled.record(1, 1e-3, World())["train_loss"] == 3.0

    # Every step's loss overflowed: nothing to learn from, the run stops saying what to do.
    for _ in range(2):
        scaled.add(losses(math.inf), 4)
    with pytest.raises(RuntimeError, match="Every training step of epoch 3 overflowed in fp16"):
        scaled.record(2, 1e-3, World())

    # Without a scaler (fp32, bf16) a non-finite loss is divergence: the epoch fails.
    plain = EpochLosses(torch.device("cpu"), None)
    plain.add(losses(2.0), 4)
    plain.add(losses(math.nan), 4)
    with pytest.raises(RuntimeError, match="training diverged"):
        plain.record(0, 1e-3, World())
    plain.add(losses(2.0), 4)
    assert "skipped_steps" not in plain.record(1, 1e-3, World())
