"""Notebook 00's checks: the experiment decides its question, and the compute share is counted,
not timed (a busy machine cannot fail a right answer)."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from verdicts import assert_rejects, verdict

from wavegms import WaveGMS
from wavegms.course.exercises import setup

SIZE = 64


def test_device_winner_is_found_by_the_experiment_and_the_variable_is_restored(capsys, monkeypatch):
    monkeypatch.setenv("WAVEGMS_DEVICE", "cpu")  # the exercise's old experiment could not decide
    assert setup.which_device_setting_wins() == "DEVICE"
    assert os.environ["WAVEGMS_DEVICE"] == "cpu"
    assert verdict(capsys, setup.check_device_winner, "DEVICE")[0] == "correct"
    assert verdict(capsys, setup.check_device_winner, " DEVICE ")[0] == "correct"


@pytest.mark.parametrize(
    ("answer", "reason"),
    [("WAVEGMS_DEVICE", "look again"), ("auto", "answer with the name"), ("cpu", "the name"),
     (1, "the name")],
)  # fmt: skip
def test_device_winner_rejects(capsys, answer, reason):
    assert_rejects(capsys, setup.check_device_winner, answer, reason=reason)


@pytest.fixture(scope="module")
def model(tiny_vae):
    return WaveGMS(tiny_vae, image_size=SIZE).eval()


def test_decoder_share_accepts_the_count_with_either_decoder(capsys, model):
    image = torch.rand(1, 3, SIZE, SIZE)
    latent = torch.zeros(1, 4, SIZE // 8, SIZE // 8)
    total = setup.count_flops(model.predict, image)
    for decoder in (model.decode, lambda z: model.tiny_vae.decode(z)):  # folded, or TAESD's own
        share = setup.count_flops(decoder, latent) / total
        assert verdict(capsys, setup.check_decoder_share, share, model, SIZE)[0] == "correct"
    assert verdict(capsys, setup.check_decoder_share, np.float32(share), model, SIZE)[0] == (
        "correct"
    )
    assert 0.5 < share < 0.9  # most of the work, the notebook says


def test_decoder_share_rejects(capsys, model):
    share = setup.decoder_share(model, SIZE)
    image = torch.rand(1, 3, SIZE, SIZE)
    encoder_share = setup.count_flops(lambda x: model.tiny_vae.encode(x), image) / (
        setup.count_flops(model.predict, image)
    )
    decoder = sum(p.numel() for p in model.tiny_vae.decoder.parameters())
    weights_share = decoder / (decoder + sum(p.numel() for p in model.parameters()))
    wrong = {
        "more than 1": 100 * share,  # a percent
        "expected": 1 - share,  # the trainable part's share
        f"{weights_share:.6g}, expected": weights_share,  # parameters are not work
        f"{encoder_share:.6g}, expected": encoder_share,  # TAESD's encoder, not its decoder
        "more than 1: a share": 4,  # the old exercise's naive timing answer
    }
    for reason, answer in wrong.items():
        assert_rejects(capsys, setup.check_decoder_share, answer, model, SIZE, reason=reason)
