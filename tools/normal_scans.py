"""How much of BUSI's lesion-free scans a BUSI model marks as lesion (maintainers' tool).

    python -m tools.normal_scans --data DATA_DIR [--checkpoint RUN_OR_FOLDER]

BUSI's 133 normal scans have empty masks; the paper's protocol, and so the shipped model's
training and its scores, leave them out. This predicts each at the model's size (threshold 0.5)
and prints on how many something is marked and what share of the pixels, the figures the model
card's limits give. Default model: the shipped ``busi``.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from wavegms.data import SegmentationDataset
from wavegms.data.layout import read_info
from wavegms.engine.checkpoint import load_model
from wavegms.pretrained import load_pretrained


def marked_shares(
    model: torch.nn.Module, dataset: SegmentationDataset, batch: int = 16
) -> np.ndarray:
    """The share of each item's pixels ``model`` marks (probability > 0.5), in [0, 1]."""
    shares: list[float] = []
    with torch.no_grad():
        for start in range(0, len(dataset), batch):
            images = torch.stack(
                [dataset[i]["image"] for i in range(start, min(start + batch, len(dataset)))]
            )
            shares += (model.predict(images) > 0.5).float().mean((1, 2, 3)).tolist()
    return np.array(shares)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, metavar="DATA_DIR", help="holds busi/")
    parser.add_argument("--checkpoint", help="a run or checkpoint folder (default: shipped busi)")
    args = parser.parse_args(argv)
    root = f"{args.data}/busi"
    classes = read_info(root).get("classes") or {}
    normals = sorted(name for name, kind in classes.items() if kind == "normal")
    if not normals:
        parser.error(f"{root} lists no normal scans (prepare BUSI with its normal class)")
    if args.checkpoint:
        model = load_model(args.checkpoint, device="cpu")
    else:
        model = load_pretrained("busi", device="cpu")
    dataset = SegmentationDataset(root, normals, model.config.image_size)
    shares = marked_shares(model, dataset)
    print(
        f"{len(shares)} normal scans at {model.config.image_size} px: something marked on "
        f"{int((shares > 0).sum())}, over 1% of the pixels on {int((shares > 0.01).sum())}; "
        f"share marked: median {np.median(shares):.1%}, mean {shares.mean():.1%}, "
        f"max {shares.max():.1%}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
