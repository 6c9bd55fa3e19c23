"""The demo runs end to end: train, evaluate, predict (a tiny version of `wavegms demo`)."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from wavegms.engine.demo import run_demo


def test_demo_trains_evaluates_and_predicts(tmp_path, tiny_vae) -> None:
    out = tmp_path / "demo"
    result = run_demo(
        out, epochs=1, device="cpu", progress=False, tiny_vae=tiny_vae, synthetic_sizes=(8, 4, 4)
    )
    assert (out / "run" / "best" / "config.json").is_file()
    summary = json.loads((out / "eval" / "summary.json").read_text())
    assert summary == result["summary"] and summary["n_images"] == 4
    assert (out / "eval" / "per_image.csv").is_file() and (out / "eval" / "cases.png").is_file()
    assert len(result["predictions"]) == 4
    for mask_path in result["predictions"]:
        with Image.open(mask_path) as mask, Image.open(out / "images" / mask_path.name) as image:
            assert mask.size == image.size
        assert (mask_path.parent / f"{mask_path.stem}_overlay.png").is_file()
    with pytest.raises(ValueError, match="already holds a demo"):
        run_demo(out, epochs=1, tiny_vae=tiny_vae)
