"""Notebook 03's checks accept the right answer and reject the wrong but plausible ones."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from verdicts import verdict_of

from wavegms.course.exercises import RETURNED_NOTHING, training
from wavegms.engine.schedule import lr_factor
from wavegms.losses import WaveGMSLoss


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """These tensors are tiny: one thread runs them fastest, and a second one only waits on a
    busy machine (a step at 16 px took 0.1 s on one thread and 20 s on two, on a loaded CPU)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# ---- the attention ---------------------------------------------------------------------------


def attention_with(*, residual=True, scale=True, softmax_dim=-1, normed=True, transpose=True):
    def attention(x, norm, q, k, v, proj):
        b, c, h, w = x.shape
        x_norm = norm(x) if normed else x
        queries, keys, values = (f(x_norm).flatten(2).transpose(1, 2) for f in (q, k, v))
        scores = queries @ keys.transpose(1, 2) * (c**-0.5 if scale else 1)
        attended = torch.softmax(scores, dim=softmax_dim) @ values  # [B, hw, c]
        if transpose:
            attended = attended.transpose(1, 2).reshape(b, c, h, w)
        else:
            attended = attended.reshape(b, c, h, w)
        out = proj(attended)
        return x + out if residual else out

    return attention


def sdpa_attention(x, norm, q, k, v, proj):
    b, c, h, w = x.shape
    queries, keys, values = (f(norm(x)).flatten(2).transpose(1, 2) for f in (q, k, v))
    attended = F.scaled_dot_product_attention(queries, keys, values)
    return x + proj(attended.transpose(1, 2).reshape(b, c, h, w))


def test_attention_accepts_matmuls_or_pytorchs_fused_attention(capsys):
    for answer in (attention_with(), sdpa_attention):
        line = verdict_of(capsys, training.check_attention, answer)
        assert line.startswith("Exercise 1: correct"), line


@pytest.mark.parametrize(
    "wrong",
    [
        {"scale": False},
        {"softmax_dim": 1},  # normalised over the queries
        {"normed": False},
        {"transpose": False},  # positions and channels mixed up
    ],
)
def test_attention_rejects(capsys, wrong):
    line = verdict_of(capsys, training.check_attention, attention_with(**wrong))
    assert line.startswith("Exercise 1: not quite"), line


def test_attention_without_the_residual_says_so(capsys):
    line = verdict_of(capsys, training.check_attention, attention_with(residual=False))
    assert line.startswith("Exercise 1: not quite") and "residual" in line, line


def test_attention_stub_and_missing_return(capsys):
    def scaffold(x, norm, q, k, v, proj):
        out = ...
        return out

    def no_return(x, norm, q, k, v, proj):
        attention_with()(x, norm, q, k, v, proj)

    assert "not done yet" in verdict_of(capsys, training.check_attention, scaffold)
    assert RETURNED_NOTHING in verdict_of(capsys, training.check_attention, no_return)


# ---- the objective ---------------------------------------------------------------------------


def objective_with(
    *,
    heads=slice(None),
    reduce=sum,
    smooth=1e-5,
    batch_dice=False,
    weights=(0.9, 0.1),
    target="mask_latent",
):
    from monai.losses import DiceLoss

    def objective(output, masks):
        dice = DiceLoss(smooth_nr=smooth, smooth_dr=smooth, batch=batch_dice)
        latents = output.mask_latents[heads]
        probs = list(output.mask_probs)[heads]
        aim = getattr(output, target)
        latent = reduce([F.mse_loss(z, aim) for z in latents])
        mask = reduce([dice(p, masks) for p in probs])
        z, teacher = output.latent, output.teacher_latent
        cosine = F.cosine_similarity(z, teacher, dim=1)
        align = weights[0] * (1 - cosine).mean() + weights[1] * F.smooth_l1_loss(z, teacher)
        return {"latent": latent, "mask": mask, "align": align, "total": latent + mask + align}

    return objective


def test_objective_accepts_the_terms_written_out(capsys):
    line = verdict_of(capsys, training.check_objective, objective_with())
    assert line.startswith("Exercise 2: correct"), line


@pytest.mark.parametrize(
    "wrong",
    [
        {"heads": slice(-1, None)},  # the last head only
        {"reduce": lambda terms: sum(terms) / len(terms)},  # the mean over heads
        {"smooth": 1.0},
        {"batch_dice": True},  # one Dice over the batch, not per image
        {"weights": (0.1, 0.9)},
        {"target": "teacher_latent"},
    ],
)
def test_objective_rejects(capsys, wrong):
    line = verdict_of(capsys, training.check_objective, objective_with(**wrong))
    assert line.startswith("Exercise 2: not quite"), line


def test_objective_refuses_the_librarys_loss_and_incomplete_dicts(capsys):
    def library(output, masks):
        return WaveGMSLoss()(output, masks)

    line = verdict_of(capsys, training.check_objective, library)
    assert "calls `WaveGMSLoss`" in line, line
    assert WaveGMSLoss.forward.__name__ == "forward", "the library's loss is restored"

    def no_total(output, masks):
        terms = objective_with()(output, masks)
        del terms["total"]
        return terms

    assert "lacks 'total'" in verdict_of(capsys, training.check_objective, no_total)


def test_objective_inputs_tell_the_variants_apart():
    output, masks = training.objective_inputs()
    assert masks.flatten(1).sum(1).tolist()[-1] == 0 and masks.flatten(1).sum(1).min() == 0
    assert len(set(masks.flatten(1).sum(1).tolist())) == 3  # sizes differ: batch != per image


# ---- the step --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_model(tiny_vae):
    from wavegms import WaveGMS

    torch.manual_seed(0)
    model = WaveGMS(tiny_vae, image_size=16)
    generator = torch.Generator().manual_seed(1)
    images = torch.rand(2, 3, 16, 16, generator=generator)
    masks = torch.zeros(2, 1, 16, 16)
    masks[0, :, 4:10, 5:12] = 1
    masks[1, :, 8:14, 2:6] = 1
    return model, images, masks


def right_step(model, optimizer, images, masks):
    optimizer.zero_grad()
    losses = WaveGMSLoss()(model(images, masks), masks)
    losses["total"].backward()
    optimizer.step()
    return losses


def no_zero_grad(model, optimizer, images, masks):
    losses = WaveGMSLoss()(model(images, masks), masks)
    losses["total"].backward()
    optimizer.step()
    return losses


def zero_grad_after_backward(model, optimizer, images, masks):
    losses = WaveGMSLoss()(model(images, masks), masks)
    losses["total"].backward()
    optimizer.zero_grad()
    optimizer.step()
    return losses


def no_optimizer_step(model, optimizer, images, masks):
    optimizer.zero_grad()
    losses = WaveGMSLoss()(model(images, masks), masks)
    losses["total"].backward()
    return losses


def only_the_latent_term(model, optimizer, images, masks):
    optimizer.zero_grad()
    losses = WaveGMSLoss()(model(images, masks), masks)
    losses["latent"].backward()
    optimizer.step()
    return losses


def step_without_return(model, optimizer, images, masks):
    right_step(model, optimizer, images, masks)


def calls_the_engine(model, optimizer, images, masks):
    from wavegms.engine.train import optimisation_step

    return optimisation_step(model, WaveGMSLoss(), optimizer, images, masks)


def step_scaffold(model, optimizer, images, masks):
    losses = ...
    return losses


def check_step(step, small_model):
    model, images, masks = small_model
    training.check_step(step, model, images, masks, lr=3e-3, weight_decay=0.01)


def test_step_accepts_the_right_step_only(capsys, small_model):
    before = [p.detach().clone() for p in small_model[0].parameters()]
    line = verdict_of(capsys, check_step, right_step, small_model)
    assert line.startswith("Exercise 3: correct"), line
    assert all(torch.equal(a, b) for a, b in zip(before, small_model[0].parameters())), (
        "the check trains copies, never the student's model"
    )
    for wrong in (no_zero_grad, zero_grad_after_backward, no_optimizer_step, only_the_latent_term):
        line = verdict_of(capsys, check_step, wrong, small_model)
        assert line.startswith("Exercise 3: not quite") and "weights" in line, (wrong, line)
    line = verdict_of(capsys, check_step, calls_the_engine, small_model)
    assert "calls `optimisation_step`" in line, line
    assert RETURNED_NOTHING in verdict_of(capsys, check_step, step_without_return, small_model)
    assert "not done yet" in verdict_of(capsys, check_step, step_scaffold, small_model)


# ---- the schedule ----------------------------------------------------------------------------


def lr_at(epoch, base_lr, warmup_epochs, epochs):
    warmup = min(warmup_epochs, epochs - 1)
    if epoch < warmup:
        return base_lr * (epoch + 1) / (warmup + 1)
    return base_lr * 0.5 * (1 + math.cos(math.pi * (epoch - warmup) / (epochs - warmup)))


def authors_warmup(epoch, base_lr, warmup_epochs, epochs):  # starts at 0
    if epoch < warmup_epochs:
        return base_lr * epoch / warmup_epochs
    return lr_at(epoch, base_lr, warmup_epochs, epochs)


def uncapped(epoch, base_lr, warmup_epochs, epochs):
    if epoch < warmup_epochs:
        return base_lr * (epoch + 1) / (warmup_epochs + 1)
    return (
        base_lr * 0.5 * (1 + math.cos(math.pi * (epoch - warmup_epochs) / (epochs - warmup_epochs)))
    )


def cosine_from_zero(epoch, base_lr, warmup_epochs, epochs):
    warmup = min(warmup_epochs, epochs - 1)
    if epoch < warmup:
        return base_lr * (epoch + 1) / (warmup + 1)
    return base_lr * 0.5 * (1 + math.cos(math.pi * epoch / epochs))


def cosine_to_the_last_epoch(epoch, base_lr, warmup_epochs, epochs):
    warmup = min(warmup_epochs, epochs - 1)
    if epoch < warmup:
        return base_lr * (epoch + 1) / (warmup + 1)
    return base_lr * 0.5 * (1 + math.cos(math.pi * (epoch - warmup) / max(1, epochs - warmup - 1)))


def test_schedule_accepts_the_formula(capsys):
    line = verdict_of(capsys, training.check_schedule, lr_at)
    assert line.startswith("Exercise 4: correct"), line
    as_tensor = verdict_of(capsys, training.check_schedule, lambda *a: torch.tensor(lr_at(*a)))
    assert as_tensor.startswith("Exercise 4: correct"), as_tensor


@pytest.mark.parametrize(
    "wrong",
    [authors_warmup, uncapped, cosine_from_zero, cosine_to_the_last_epoch, lambda e, lr, w, n: lr],
)
def test_schedule_rejects(capsys, wrong):
    line = verdict_of(capsys, training.check_schedule, wrong)
    assert line.startswith("Exercise 4: not quite") and "expected" in line, line


def test_the_schedules_checked_include_a_capped_warmup():
    assert any(warmup >= epochs for _, warmup, epochs in training.SCHEDULES)
    for base_lr, warmup, epochs in training.SCHEDULES:  # the reference is the engine's
        assert [lr_at(e, base_lr, warmup, epochs) for e in range(epochs)] == pytest.approx(
            [base_lr * lr_factor(e, warmup, epochs) for e in range(epochs)]
        )


# ---- sampled predictions ---------------------------------------------------------------------


def test_sampling_recomputes_the_fraction_from_the_same_noise(capsys, small_model):
    model, images, _ = small_model
    model.eval()
    with torch.no_grad():
        mu, logvar = model.encoder(images)
    noise = torch.randn(4, *mu.shape, generator=torch.Generator().manual_seed(0))
    labels = training.sampled_labels(model, images, noise)
    right = labels.float().std(0).gt(0).float().mean().item()
    assert 0.01 < right < 0.99, "the test model's samples disagree somewhere, not everywhere"
    line = verdict_of(capsys, training.check_sampling, right, model, images, noise)
    assert line.startswith("Exercise 5: correct"), line
    with torch.no_grad():  # the encoder's mean, not samples: nothing changes
        from_mu = 0.0
        probs_changed = (
            torch.stack(
                [model.decode(model.lmm(mu + torch.exp(0.5 * logvar) * e)[-1]) for e in noise]
            )
            .std(0)
            .gt(0)
            .float()
            .mean()
            .item()
        )  # probabilities, not labels: almost every pixel
    for wrong in (from_mu, 0.5, 0.64, probs_changed, right * 100):
        line = verdict_of(capsys, training.check_sampling, wrong, model, images, noise)
        assert line.startswith("Exercise 5: not quite"), (wrong, line)


# ---- the narrow LMM --------------------------------------------------------------------------


def test_narrow_share(capsys):
    from wavegms.lmm import LatentMappingModel

    def count(module):
        return sum(p.numel() for p in module.parameters())

    right = count(LatentMappingModel(base_channels=16)) / count(LatentMappingModel())
    assert verdict_of(capsys, training.check_narrow_share, right).startswith("Exercise 6: correct")
    for wrong in (0.5, 0.25, 1 - right, [right, right]):
        line = verdict_of(capsys, training.check_narrow_share, wrong)
        assert line.startswith("Exercise 6: not quite"), (wrong, line)
