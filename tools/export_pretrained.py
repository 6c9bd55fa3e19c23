"""Turn a finished training run into a shipped pretrained model (maintainers' tool).

``python -m tools.export_pretrained RUN_DIR --name busi`` writes ``wavegms/pretrained/<name>/``:
the ``best/`` checkpoint's ``config.json`` and weights in fp16 (half the size; loading casts them
back), the run's ``train_config.json``, ``log.jsonl``, ``curves.png`` and the best epoch's
``metrics.json``. The model card (``README.md``) is written by hand and kept.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from wavegms.engine.checkpoint import load_train_config
from wavegms.engine.evaluate import training_prior
from wavegms.engine.prior import save_prior
from wavegms.pretrained import pretrained_dir
from wavegms.utils.atomic import atomic_write_bytes, atomic_write_json

WEIGHTS = "diffusion_pytorch_model.safetensors"
RUN_FILES = ("log.jsonl", "curves.png")


def export(run_dir: str | Path, name: str, dtype: torch.dtype = torch.float16) -> Path:
    """Write run ``run_dir``'s ``best/`` model as the shipped model ``name``; return its folder."""
    run_dir, target = Path(run_dir), pretrained_dir(name)
    best = run_dir / "best"
    state = load_file(best / WEIGHTS)
    too_large = [k for k, v in state.items() if v.is_floating_point() and v.abs().max() > 6e4]
    if dtype == torch.float16 and too_large:
        raise ValueError(f"weights exceed fp16's range: {too_large[:3]}")
    target.mkdir(parents=True, exist_ok=True)
    half = {k: v.to(dtype) if v.is_floating_point() else v for k, v in state.items()}
    tmp = target / f".{WEIGHTS}.tmp"
    save_file(half, tmp, metadata={"format": "pt"})
    tmp.chmod(0o644)  # safetensors creates files 0600; this one is shared with everyone
    tmp.replace(target / WEIGHTS)
    atomic_write_bytes(target / "config.json", (best / "config.json").read_bytes())
    atomic_write_bytes(target / "metrics.json", (best / "metrics.json").read_bytes())
    for file in RUN_FILES:
        if (run_dir / file).is_file():
            shutil.copyfile(run_dir / file, target / file)
    config = load_train_config(run_dir)
    settings = json.loads((run_dir / "train_config.json").read_text())
    atomic_write_json(target / "train_config.json", {**settings, "data_dir": "DATA_DIR"})
    prior = training_prior(config, run_dir, best, config.image_size)
    if prior is None:
        raise FileNotFoundError(f"the training data of {run_dir} is not at {config.data_dir}")
    save_prior(target, *prior[:2])
    return target


def main() -> None:
    prog = "python -m tools.export_pretrained"
    parser = argparse.ArgumentParser(prog=prog, description=__doc__)
    parser.add_argument("run_dir", help="a finished `wavegms train` run folder")
    parser.add_argument("--name", required=True, help="the shipped model's name, e.g. busi")
    args = parser.parse_args()
    print(export(args.run_dir, args.name))


if __name__ == "__main__":
    main()
