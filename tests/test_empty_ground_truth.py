"""``evaluate`` on images whose ground-truth masks are all empty says so, instead of blaming
the model for learning where lesions usually are (issue 22, item 17)."""

from __future__ import annotations

import numpy as np
from PIL import Image
from runs import make_prepared_dataset, make_run

from wavegms.cli import main


def test_evaluate_says_when_every_ground_truth_mask_is_empty(tmp_path, tiny_vae, capsys):
    data = tmp_path / "data"
    root = make_prepared_dataset(data, "bus", {f"00000{i}": (64, 72) for i in range(1, 4)})
    for mask in (root / "masks").iterdir():  # scans without lesions
        Image.fromarray(np.zeros((64, 72), np.uint8)).save(mask)
    run = make_run(tmp_path / "run", tiny_vae)  # trained (here: initialised) on synthetic data
    argv = ["evaluate", "--checkpoint", str(run), "--dataset", "bus", "--data", str(data)]
    assert main([*argv, "--out", str(tmp_path / "eval"), "--no-progress", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "every ground-truth mask is empty (3/3)" in out and "false alarms" in out
    assert "learned where lesions usually are" not in out
