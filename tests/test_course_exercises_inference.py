"""Notebook 05's checks accept the right answer and reject the wrong but plausible ones.

The checks need only a model's ``predict`` and ``config.image_size``: a small fixed network
that is far from mirror-symmetric stands in for a trained model, so these tests stay fast.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from verdicts import verdict_of

from wavegms.course.exercises import RETURNED_NOTHING, inference


class Lopsided:
    """A stand-in model: a probability from a 5 x 5 convolution whose weights grow from left
    to right, so that mirroring the input changes the prediction."""

    config = SimpleNamespace(image_size=32)

    def __init__(self, bias: float = 0.0) -> None:
        weight = torch.linspace(-1, 2, 5).expand(5, 5) / 5
        self.weight = weight.expand(1, 3, 5, 5).clone()
        self.bias = bias

    @torch.no_grad()
    def predict(self, images):
        logits = torch.nn.functional.conv2d(images - 0.5, self.weight, padding=2)
        return torch.sigmoid(8 * logits + self.bias)


# ---- flip test-time augmentation -------------------------------------------------------------


def flipped(model, images):
    plain = model.predict(images)
    mirrored = model.predict(images.flip(-1)).flip(-1)
    return (plain + mirrored) / 2


def test_the_stand_in_model_is_not_mirror_symmetric():
    model, images = Lopsided(), inference.tta_inputs(32)
    plain, back = model.predict(images), model.predict(images.flip(-1)).flip(-1)
    assert (plain - back).abs().max() > 0.1


def test_flip_tta_accepts_the_average(capsys):
    line = verdict_of(capsys, inference.check_flip_tta, flipped, Lopsided())
    assert line.startswith("Exercise 1: correct"), line


@pytest.mark.parametrize(
    "wrong",
    [
        lambda m, x: (m.predict(x) + m.predict(x.flip(-1))) / 2,  # not mirrored back
        lambda m, x: (m.predict(x) + m.predict(x.flip(-2)).flip(-2)) / 2,  # upside down
        lambda m, x: torch.maximum(m.predict(x), m.predict(x.flip(-1)).flip(-1)),
        lambda m, x: m.predict(x.flip(-1)).flip(-1),  # the mirrored prediction alone
        lambda m, x: [0, 0, 0],
        lambda m, x: (m.predict(x) > 0.5).float(),
    ],
)
def test_flip_tta_rejects(capsys, wrong):
    line = verdict_of(capsys, inference.check_flip_tta, wrong, Lopsided())
    assert line.startswith("Exercise 1: not quite"), line


def test_flip_tta_names_the_plain_prediction_a_stub_and_a_missing_return(capsys):
    line = verdict_of(capsys, inference.check_flip_tta, lambda m, x: m.predict(x), Lopsided())
    assert "plain prediction" in line, line

    def scaffold(model, images):
        averaged = ...
        return averaged

    def no_return(model, images):
        flipped(model, images)

    assert "not done yet" in verdict_of(capsys, inference.check_flip_tta, scaffold, Lopsided())
    line = verdict_of(capsys, inference.check_flip_tta, no_return, Lopsided())
    assert RETURNED_NOTHING in line


# ---- images unlike any the model has seen ----------------------------------------------------


def found_by(model):
    return (model.predict(inference.strange_images(32)) > 0.5).float().mean((1, 2, 3))


def test_strange_images_accepts_the_recomputed_fractions_in_any_container(capsys):
    model = Lopsided(bias=0.5)  # grey gives sigmoid(0.5): all foreground; noise: part of it
    right = found_by(model)
    assert 0 < right[1] < 1 and right[0] == 1
    for answer in (right, right.tolist(), tuple(right.tolist()), right.numpy()):
        line = verdict_of(capsys, inference.check_strange_images, answer, model)
        assert line.startswith("Exercise 2: correct"), line


def test_strange_images_rejects(capsys):
    model = Lopsided(bias=0.5)
    right = found_by(model).tolist()
    for wrong in ([0, 0], [1, 1], [right[1], right[0]], [right[0]], [0.5, 0.5]):
        line = verdict_of(capsys, inference.check_strange_images, wrong, model)
        assert line.startswith("Exercise 2: not quite"), (wrong, line)


def test_strange_images_are_the_same_every_time():
    assert torch.equal(inference.strange_images(16), inference.strange_images(16))
    grey, noise = inference.strange_images(16)
    assert (grey == 0.5).all() and noise.std() > 0.2
