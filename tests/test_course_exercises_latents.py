"""Notebook 02's checks accept the method written right and reject plausible mistakes."""

from __future__ import annotations

import pytest
import torch
from verdicts import assert_rejects, verdict

from wavegms import WaveGMS
from wavegms.course.exercises import latents


@pytest.fixture(scope="module")
def model(tiny_vae):
    return WaveGMS(tiny_vae, image_size=64).eval()


# ---- Exercise 1: the mask latent E(2m - 1) (E4) ------------------------------------------------


def mask_latent(vae, masks):
    masks3 = masks.expand(-1, 3, -1, -1)
    return vae.encode(2 * masks3 - 1).latents


def test_mask_latent_accepts_the_formula(capsys, model):
    assert verdict(capsys, latents.check_mask_latent, mask_latent, model)[0] == "correct"


def stub(vae, masks):
    pixels = ...
    ...  # TODO: your code here
    return vae.encode(pixels).latents


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (lambda vae, m: vae.encode(m.expand(-1, 3, -1, -1)).latents, "encode 2m - 1, not m"),
        (lambda vae, m: vae.encode(1 - 2 * m.expand(-1, 3, -1, -1)).latents, "not 1 - 2m"),
        (lambda vae, m: vae.encode(2 * m - 1).latents, "Error"),  # one channel: TAESD wants 3
        (lambda vae, m: vae.encode(2 * m.expand(-1, 3, -1, -1) - 1), "should be a tensor"),
        (lambda vae, m: None, "returned None"),
    ],
)
def test_mask_latent_rejects(capsys, model, answer, reason):
    assert_rejects(capsys, latents.check_mask_latent, answer, model, reason=reason)


def test_an_untouched_stub_is_not_done_yet(capsys, model):
    assert verdict(capsys, latents.check_mask_latent, stub, model)[0] == "not done yet"


# ---- Exercise 2: the decode formula (E5) ------------------------------------------------------


def decode(vae, latents_):
    rgb = vae.decode(latents_).sample
    return ((rgb.mean(dim=1, keepdim=True) + 1) / 2).clamp(0, 1)


def test_decode_accepts_the_formula_and_the_inputs_need_the_clamp(capsys, model):
    assert verdict(capsys, latents.check_decode, decode, model)[0] == "correct"
    with torch.no_grad():
        rgb = model.tiny_vae.decode(latents.decode_inputs(model)).sample
    assert rgb.mean(1).abs().max() > 1.05  # without the clamp, probabilities leave [0, 1]


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (lambda vae, z: (vae.decode(z).sample.mean(1, keepdim=True) + 1) / 2, "clamp"),
        (lambda vae, z: ((vae.decode(z).sample[:, :1] + 1) / 2).clamp(0, 1), "average the 3"),
        (lambda vae, z: vae.decode(z).sample.mean(1, keepdim=True).clamp(0, 1), "(y + 1) / 2"),
        (lambda vae, z: ((vae.decode(z).sample.mean(1) + 1) / 2).clamp(0, 1), "keepdim"),
        (lambda vae, z: (decode(vae, z) > 0.5).float(), "not a thresholded mask"),
        (lambda vae, z: torch.sigmoid(vae.decode(z).sample.mean(1, keepdim=True)), "largest"),
        (lambda vae, z: ((vae.decode(z).sample.amax(1, keepdim=True) + 1) / 2).clamp(0, 1),
         "largest"),
    ],
)  # fmt: skip
def test_decode_rejects(capsys, model, answer, reason):
    assert_rejects(capsys, latents.check_decode, answer, model, reason=reason)


# ---- Exercise 3: the latents of constant masks ------------------------------------------------


def test_constant_latents_accepts_lists_tuples_and_tensors(capsys, model):
    reference = latents.constant_latents(model)
    for kind in (list, tuple, torch.tensor):
        answer = {name: kind(values) for name, values in reference.items()}
        assert verdict(capsys, latents.check_constant_latents, answer, model)[0] == "correct"


def test_constant_latents_rejects(capsys, model):
    right = latents.constant_latents(model)
    vae = model.tiny_vae
    with torch.no_grad():  # encoding the masks as 0 / 1 pixels, not -1 / +1
        plain = vae.encode(torch.tensor([0.0, 1.0]).view(2, 1, 1, 1).expand(2, 3, 64, 64))
    means = plain.latents.mean((2, 3))
    wrong = {
        "background and foreground are swapped": {
            "background": right["foreground"],
            "foreground": right["background"],
        },
        "background: largest difference": {"background": means[0], "foreground": means[1]},
        "shape (3,), expected (4,)": {k: v[:3] for k, v in right.items()},
        "keys": {"background": right["background"]},
    }
    for reason, answer in wrong.items():
        assert_rejects(capsys, latents.check_constant_latents, answer, model, reason=reason)


# ---- Exercise 4: interpolation between two mask latents ---------------------------------------


@pytest.fixture(scope="module")
def ends(model):
    masks = latents.random_masks(2, seed=7)
    with torch.no_grad():
        _, z = model.encode_targets(torch.zeros(2, 3, 32, 32), masks)
    return z[0], z[1]


def test_interpolation_compares_every_frame(capsys, model, ends):
    z0, z1 = ends
    steps = torch.linspace(0, 1, 5)
    with torch.no_grad():
        blended = model.decode(torch.stack([(1 - t) * z0 + t * z1 for t in steps]))
        frames = model.decode(torch.stack([z0, z1]))
    assert verdict(capsys, latents.check_interpolation, blended, model, z0, z1)[0] == "correct"
    wrong = {
        "pixel space": torch.stack([(1 - t) * frames[0] + t * frames[1] for t in steps]),
        "from z1 to z0": blended.flip(0),
        "largest difference": torch.stack([frames[0]] * 2 + [frames[1]] * 3),  # the ends only
        "5 frames": blended[[0, 2, 4]],
    }
    for reason, answer in wrong.items():
        assert_rejects(capsys, latents.check_interpolation, answer, model, z0, z1, reason=reason)
