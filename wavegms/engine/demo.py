"""``wavegms demo --out DIR``: train, evaluate and predict end to end in a few minutes.

:func:`run_demo` chains :func:`.train.train`, :func:`.evaluate.evaluate` and
:func:`.predict.predict_files` on the built-in synthetic data; ``DESCRIPTION`` below
(the command's ``--help``) lists what lands in ``DIR``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from diffusers import AutoencoderTiny

from ..data.images import save_png, to_uint8
from .config import PRESETS, preset
from .evaluate import evaluate
from .predict import predict_files
from .viz import to_numpy_image

HELP = "a few-minute end-to-end demo on synthetic data (train, evaluate, predict; CPU is fine)"
DESCRIPTION = """
Train, evaluate and predict end to end in a few minutes on a CPU, on built-in synthetic data: the
quick preset (64 x 64 synthetic ultrasound images) for a few epochs. Only TAESD is needed: from
$WAVEGMS_TAESD when set, else downloaded once from the Hugging Face hub.

DIR receives:
  run/          the training run (train_config.json, best/, last/, log.jsonl, curves.png)
  eval/         summary.json, per_image.csv, cases.png
  images/       a few test images as PNG files (the inputs of predict)
  predictions/  their masks and overlays
"""

N_IMAGES = 4  # images given to `predict`
PARTS = ("run", "eval", "images", "predictions")  # what the demo writes in DIR


def _holds_something(path: Path) -> bool:
    """Whether ``path`` is a file, or a folder with anything in it (an empty one is free)."""
    return path.is_file() or (path.is_dir() and any(path.iterdir()))


def run_demo(
    out_dir: str | Path,
    *,
    epochs: int = PRESETS["quick"]["epochs"],
    device: str | None = None,
    progress: bool = True,
    tiny_vae: AutoencoderTiny | None = None,
    **overrides: Any,
) -> dict[str, Any]:
    """Train the ``quick`` preset for ``epochs``, evaluate it and predict a few images.

    ``overrides`` change other settings of the preset (any
    :class:`~wavegms.engine.config.TrainConfig` field, e.g. ``synthetic_kind="endoscopy"``,
    ``synthetic_sizes=(32, 8, 8)``).

    Returns ``{"run_dir", "eval_dir", "predictions", "summary", "best_dice"}``. Refuses an
    ``out_dir`` that already holds any of :data:`PARTS` with something in it (a demo, or
    files of the user's): nothing is overwritten.
    """
    from .run_data import build_datasets
    from .train import train

    out_dir = Path(out_dir).expanduser()
    taken = [out_dir / name for name in PARTS if _holds_something(out_dir / name)]
    if taken:
        what = "a demo" if (out_dir / "run").exists() else "files of yours"
        raise ValueError(
            f"{out_dir} already holds {what} ({', '.join(f'{p.name}/' for p in taken)}), which "
            f"the demo would write over: nothing was written; choose another --out, or move "
            f"{taken[0]} away."
        )
    config = preset("quick", **{"epochs": epochs, "device": device or "auto", **overrides})
    config.notes["preset"] = "quick (demo)"
    result = train(config, out_dir / "run", progress=progress, tiny_vae=tiny_vae)
    summary = evaluate(
        result.run_dir,
        out_dir=out_dir / "eval",
        device=device,
        progress=progress,
        tiny_vae=tiny_vae,
    )

    # Image files as a user would have them: the test split's first images, as PNGs.
    test_set = build_datasets(config)[0]["test"]
    images = []
    for i in range(min(N_IMAGES, len(test_set))):
        item = test_set[i]
        path = out_dir / "images" / f"{item['name']}.png"
        save_png(to_uint8(to_numpy_image(item["image"])), path)
        images.append(path)
    report = predict_files(
        result.run_dir,
        images,
        out_dir / "predictions",
        save_overlay=True,
        device=device,
        progress=progress,
        tiny_vae=tiny_vae,
    )
    return {
        "run_dir": result.run_dir,
        "eval_dir": out_dir / "eval",
        "predictions": report.written,
        "summary": summary,
        "best_dice": result.best_dice,
    }


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, metavar="DIR", help="folder for everything made")
    parser.add_argument(
        "--epochs",
        type=int,
        default=PRESETS["quick"]["epochs"],
        help="training epochs (default: %(default)s; more: better masks, slower)",
    )
    parser.add_argument(
        "--device", default="auto", help="cpu, cuda, cuda:1, mps or auto (GPU when available)"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    if args.epochs < 1:
        raise ValueError(f"--epochs must be at least 1, got {args.epochs}")
    result = run_demo(
        args.out, epochs=args.epochs, device=args.device, progress=not args.no_progress
    )
    summary = result["summary"]
    print(
        f"\nDemo done. Test Dice {summary['dice_mean']:.3f} (IoU {summary['iou_mean']:.3f}, "
        f"HD95 {summary['hd95_mean']:.1f} px) on {summary['n_images']} synthetic images.\n"
        f"  training run:  {result['run_dir']}  (curves.png, best/)\n"
        f"  evaluation:    {result['eval_dir']}  (summary.json, per_image.csv, cases.png)\n"
        f"  predictions:   {Path(args.out) / 'predictions'}  ({len(result['predictions'])} masks "
        "+ overlays)\n"
        f"Next: wavegms predict --checkpoint {result['run_dir']} YOUR_IMAGES --out MASKS_DIR"
    )
    return 0


__all__ = ["run_demo"]
