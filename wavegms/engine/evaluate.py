"""Evaluation of a trained model: :func:`evaluate` and the ``wavegms evaluate`` subcommand.

What is measured, which files are written and which images are used is stated once, in
``DESCRIPTION`` below (the command's ``--help``). Metrics come from :mod:`wavegms.engine.metrics`;
the run's own items come from :func:`wavegms.data.build_datasets`, so evaluation sees exactly
the split (and, for synthetic runs, the very images) that training held out.
"""

from __future__ import annotations

import argparse
import csv
import io
from pathlib import Path
from typing import Any

import torch
from matplotlib.figure import Figure
from torch.utils.data import ConcatDataset, DataLoader, Dataset
from tqdm.auto import tqdm

from ..data import SegmentationDataset, make_splits
from ..data.splits import EXCLUDED_CLASSES
from ..tiny_vae import check_image_size
from ..utils.atomic import atomic_write_json, atomic_write_text
from ..utils.jsonfile import read_json_object
from ..utils.memory import explain_out_of_memory
from ..utils.progress import show_bars
from ..utils.threads import configure_threads
from .checkpoint import (
    METRICS,
    find_run_dir,
    load_model,
    load_train_config,
    resolve_checkpoint,
)
from .config import SOURCES, TrainConfig
from .metrics import segmentation_metrics, summarize
from .predict import add_model_arguments, inference_fixes, model_folder
from .prior import PRIOR_FILE, constant_mask_prior, load_prior, prior_dice
from .run_data import build_datasets
from .viz import plot_cases, save_figure

HELP = "evaluate a trained model (Dice, IoU, HD95) on its test split or another dataset"
DESCRIPTION = """
Evaluate a trained model per image at its resolution (224 unless the run used another) and
threshold 0.5: Dice, IoU and HD95 in pixels, with explicit empty-mask rules (both empty: Dice 1,
HD95 0; one empty: Dice 0, HD95 = the image diagonal).

Writes to EVAL_DIR:
  summary.json    mean and std of each metric, pooled Dice, n_images, the constant-mask
                  baseline (prior_dice_mean: the Dice of the training split's mean mask,
                  thresholded where it scores best on the training split, predicted for every
                  image), and provenance (checkpoint, trained_on, evaluated_on, split,
                  cross_domain, selected_on)
  per_image.csv   name, dice, iou, hd95, gt_empty, pred_empty
  cases.png       the best and the worst cases: image, ground truth, prediction

Default images: the test split of the run's own data (the names in RUN_DIR/splits.json;
synthetic runs regenerate theirs). With --dataset OTHER --data DATA_DIR the evaluation is
cross-domain (e.g. a BUSI checkpoint on BUS): all usable items of OTHER (BUSI's empty "normal"
class excluded, as in the paper), or its GMS test list with --split test.

A model that does not clearly beat the constant-mask baseline has learned where lesions
usually are, not what they look like; evaluate says so. It also says how many ground-truth masks
are empty: when all are, Dice only counts false alarms, and no baseline is compared.

Examples:
  wavegms evaluate --checkpoint runs/busi --out evals/busi
  wavegms evaluate --pretrained busi --dataset busi --data DATA_DIR --out evals/pretrained
  wavegms evaluate --checkpoint runs/busi --dataset bus --data DATA_DIR --out evals/busi_on_bus
"""

SPLIT_CHOICES = ("train", "val", "test", "all")
SUMMARY = "summary.json"
PER_IMAGE = "per_image.csv"
CASES = "cases.png"
N_CASES = 3  # best and worst shown in cases.png


def select_items(
    config: TrainConfig | None,
    run_dir: Path | None,
    *,
    dataset: str | None,
    data_dir: str | Path | None,
    split: str | None,
    image_size: int,
) -> tuple[Dataset, dict[str, Any]]:
    """The dataset to evaluate and a description of it (see ``DESCRIPTION``).

    The run's own dataset comes from its saved ``splits.json`` (synthetic data: regenerated, the
    very images training held out); another dataset is a cross-domain evaluation.

    Returns ``(items, info)``: ``items`` yields ``{"image", "mask", "name"}`` at ``image_size``;
    ``info`` has ``trained_on``, ``evaluated_on``, ``split``, ``cross_domain``, ``data_dir``.
    """
    trained_on = config.dataset if config else None
    dataset = dataset or trained_on
    if dataset is None:
        raise ValueError(
            "The checkpoint has no train_config.json (not a `wavegms train` run folder): "
            "say what to evaluate on with --dataset NAME --data DATA_DIR."
        )
    if dataset not in SOURCES:
        raise ValueError(f"Unknown dataset {dataset!r}: choose one of {', '.join(SOURCES)}.")
    own = dataset == trained_on
    cross_domain = trained_on is not None and not own
    split = split or ("all" if cross_domain else "test")
    if split not in SPLIT_CHOICES:
        raise ValueError(f"Unknown split {split!r}: choose one of {', '.join(SPLIT_CHOICES)}.")
    if own:
        data_dir = data_dir or config.data_dir
    if dataset != "synthetic" and not data_dir:
        raise ValueError(
            f"Evaluating on {dataset!r} needs --data DATA_DIR (the folder holding {dataset}/). "
            f"Prepare it with: python -m data_download {dataset} --root DATA_DIR"
        )
    info = {
        "trained_on": trained_on or "unknown",
        "evaluated_on": dataset,
        "split": split,
        "cross_domain": cross_domain,
        "data_dir": str(data_dir) if data_dir and dataset != "synthetic" else None,
    }
    if not own and dataset != "synthetic":
        return _other_dataset(Path(data_dir).expanduser() / dataset, split, image_size), info
    base = config if own else TrainConfig(dataset="synthetic")
    base = base.replace(image_size=image_size, data_dir=str(data_dir) if data_dir else None)
    datasets, _ = build_datasets(base, run_dir if own else None)
    return (ConcatDataset(list(datasets.values())) if split == "all" else datasets[split]), info


def _other_dataset(root: Path, split: str, image_size: int) -> Dataset:
    """A dataset the model was not trained on: all usable items, or a part of its GMS split."""

    if split == "all":
        everything = SegmentationDataset(root, image_size=image_size)
        classes = everything.classes or {}
        names = [name for name in everything.names if classes.get(name) not in EXCLUDED_CLASSES]
    else:
        names = getattr(make_splits(root, "gms"), split)
    return SegmentationDataset(root, names=names, image_size=image_size)


def training_prior(
    config: TrainConfig | None,
    run_dir: Path | None,
    folder: Path,
    image_size: int,
    data_dir: str | Path | None = None,
) -> tuple[torch.Tensor, float, str] | None:
    """The constant-mask baseline of the data the model was trained on.

    From the run's training split when its data can be read (``data_dir`` first, then the
    run's own), else from the ``prior.safetensors`` stored with the checkpoint (shipped
    models), else None. Returns ``(mean_mask [1, S, S], threshold, source)``.
    """
    if config is not None:
        for where in dict.fromkeys([data_dir or config.data_dir, config.data_dir]):
            try:
                base = config.replace(image_size=image_size, data_dir=where)
                train = build_datasets(base, run_dir)[0]["train"]
            except (FileNotFoundError, ValueError):
                continue
            masks = torch.stack([train[i]["mask"] for i in range(len(train))])
            return (*constant_mask_prior(masks), f"the training split ({len(train)} masks)")
    if (folder / PRIOR_FILE).is_file():
        return (*load_prior(folder, image_size), f"{PRIOR_FILE} stored with the checkpoint")
    return None


def _provenance(checkpoint: Path, config: TrainConfig | None) -> dict[str, Any]:
    """Which split chose this checkpoint and at which epoch (from its ``metrics.json``, written
    by the trainer), and the trainer's warning when it was chosen on test."""
    metrics_file = checkpoint / METRICS
    metrics = read_json_object(metrics_file) if metrics_file.is_file() else {}
    info = {
        "selected_on": metrics.get("selected_on", config.selection if config else None),
        "checkpoint_epoch": metrics.get("epoch"),
    }
    if metrics.get("warning"):
        info["warning"] = metrics["warning"]
    return info


class _Extremes:
    """The best and worst ``k`` cases seen so far (by Dice, ties by HD95), with their pictures,
    so that the cases figure needs no second pass over the data."""

    def __init__(self, k: int) -> None:
        self.k = k
        self.seen = 0  # items so far: the last tie-breaker keeps dataset order
        self.cases: list[tuple[tuple[float, float, int], dict[str, Any]]] = []

    def update(self, batch: dict[str, Any], preds: torch.Tensor, metrics: dict) -> None:
        for j, name in enumerate(batch["name"]):
            dice, hd = metrics["dice"][j].item(), metrics["hd95"][j].item()
            case = {"name": name, "image": batch["image"][j], "mask": batch["mask"][j]}
            case |= {"pred": preds[j], "label": f"Dice {dice:.3f}, HD95 {hd:.1f} px"}
            self.cases.append(((-dice, hd, self.seen), case))
            self.seen += 1
        self.cases.sort(key=lambda entry: entry[0])
        if len(self.cases) > 2 * self.k:
            self.cases = self.cases[: self.k] + self.cases[-self.k :]

    def figure(self, title: str) -> Figure:
        cases = [case for _, case in self.cases]
        tags = ["best"] * min(self.k, len(cases)) + ["worst"] * max(0, len(cases) - self.k)
        return plot_cases(
            *([case[key] for case in cases] for key in ("image", "mask", "pred", "name", "label")),
            title=title,
            row_labels=tags,
        )


@torch.no_grad()
def _per_image_metrics(
    model: torch.nn.Module,
    items: Dataset,
    *,
    batch_size: int,
    threshold: float,
    num_workers: int,
    precision: str,
    progress: bool,
) -> tuple[list[str], dict[str, torch.Tensor], _Extremes, torch.Tensor]:
    """Per-image metrics, the best and worst cases, and the masks ``[N, 1, S, S]`` (bool: the
    constant-mask baseline is scored on them without reading the images again)."""
    loader = DataLoader(items, batch_size=batch_size, shuffle=False, num_workers=num_workers)
    names: list[str] = []
    parts: dict[str, list[torch.Tensor]] = {}
    masks: list[torch.Tensor] = []
    extremes = _Extremes(N_CASES)
    # A bar beside the loader, not around it: tqdm.auto's wrapper makes an iterator of what it
    # wraps at once, and a DataLoader's iterator starts its workers (a second, unused set).
    bar = tqdm(total=len(loader), desc="evaluate", unit="batch", disable=not show_bars(progress))
    for batch in loader:
        probs = model.predict(batch["image"], precision=precision)
        metrics = segmentation_metrics(probs, batch["mask"], threshold)
        for key, value in metrics.items():
            parts.setdefault(key, []).append(value)
        names += list(batch["name"])
        masks.append(batch["mask"] > 0.5)
        extremes.update(batch, (probs > threshold).cpu(), metrics)
        bar.update()
    bar.close()
    if not names:
        raise ValueError("The selected split has no images: nothing to evaluate.")
    per_image = {key: torch.cat(values) for key, values in parts.items()}
    return names, per_image, extremes, torch.cat(masks)


def _per_image_csv(names: list[str], per_image: dict[str, torch.Tensor]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["name", "dice", "iou", "hd95", "gt_empty", "pred_empty"])
    for i, name in enumerate(names):
        writer.writerow(
            [
                name,
                f"{per_image['dice'][i].item():.6f}",
                f"{per_image['iou'][i].item():.6f}",
                f"{per_image['hd95'][i].item():.4f}",
                int(per_image["target_size"][i].item() == 0),
                int(per_image["pred_size"][i].item() == 0),
            ]
        )
    return buffer.getvalue()


def evaluate(
    checkpoint: str | Path,
    *,
    dataset: str | None = None,
    data_dir: str | Path | None = None,
    split: str | None = None,
    out_dir: str | Path,
    image_size: int | None = None,
    batch_size: int = 16,
    device: str | torch.device | None = None,
    tiny_vae=None,  # noqa: ANN001 - an AutoencoderTiny (default: the run's TAESD)
    threshold: float = 0.5,
    num_workers: int = 0,
    precision: str = "fp32",
    progress: bool = True,
    threads: int | None = None,
) -> dict[str, Any]:
    """Evaluate a checkpoint and write ``summary.json``, ``per_image.csv`` and ``cases.png``.

    Args:
        checkpoint: a run folder (``best/`` is used) or a checkpoint folder.
        dataset: what to evaluate on; default the run's own dataset. Another one is a
            cross-domain evaluation.
        data_dir: ``DATA_DIR`` holding ``<dataset>/``; default the run's for its own dataset.
        split: ``"train"``, ``"val"``, ``"test"`` or ``"all"``; default ``"test"``, and
            ``"all"`` (every usable item) for a cross-domain evaluation.
        out_dir: the ``EVAL_DIR`` to write to (created).
        image_size: evaluation resolution; default the model's (``config.image_size``).
        batch_size: images per forward pass.
        device: default :func:`~wavegms.get_device`.
        threshold: foreground where the probability is above this (the paper: 0.5).
        precision: ``"fp32"`` (default, exact) or mixed precision, see :meth:`WaveGMS.predict`
            (the model is loaded in its fastest form for it, see
            :meth:`WaveGMS.prepare_for_inference`).
        num_workers: data loading processes.
        progress: show a progress bar.
        threads: CPU threads (default: chosen, see :mod:`wavegms.utils.threads`).

    Returns:
        The summary written to ``summary.json`` (``dice_mean``, ``dice_std``, ``iou_mean``,
        ``iou_std``, ``hd95_mean``, ``hd95_std``, ``dice_pooled``, ``n_images``, ...).

    Raises:
        torch.OutOfMemoryError: a batch did not fit in the device's memory; one line saying
            what to lower, raised after the batch's memory was freed.
    """
    folder = resolve_checkpoint(checkpoint)
    run_dir = find_run_dir(folder)
    config = load_train_config(folder)
    model_config = read_json_object(folder / "config.json")
    image_size = int(image_size or model_config.get("image_size", 224))
    check_image_size(image_size)
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    if not 0 < threshold < 1:
        raise ValueError(f"threshold must be between 0 and 1, got {threshold}")
    configure_threads(threads)
    # Data first: a missing folder should fail before the model is loaded.
    items, info = select_items(
        config, run_dir, dataset=dataset, data_dir=data_dir, split=split, image_size=image_size
    )
    model = load_model(folder, device=device, tiny_vae=tiny_vae).prepare_for_inference(precision)
    names, per_image, extremes, masks = explain_out_of_memory(
        lambda: _per_image_metrics(
            model,
            items,
            batch_size=batch_size,
            threshold=threshold,
            num_workers=num_workers,
            precision=precision,
            progress=progress,
        ),
        model.device,
        f"evaluating batches of {batch_size} images",
        inference_fixes(batch_size, precision, model.device),
    )
    description = f"trained on {info['trained_on']}, evaluated on {info['evaluated_on']}"
    prior = training_prior(config, run_dir, folder, image_size, data_dir)
    summary: dict[str, Any] = {
        **summarize(per_image),
        "prior_dice_mean": prior_dice(*prior[:2], masks).mean().item() if prior else None,
        "prior_source": prior[2] if prior else "unavailable (the training data is not at hand)",
        "n_gt_empty": int((per_image["target_size"] == 0).sum()),
        "hd95_unit": "pixels",
        "checkpoint": str(folder),
        **info,
        "description": description + (" (cross-domain)" if info["cross_domain"] else ""),
        **_provenance(folder, config),
        "image_size": image_size,
        "threshold": threshold,
    }
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out_dir / PER_IMAGE, _per_image_csv(names, per_image))
    title = f"{description}, {info['split']} split: Dice {summary['dice_mean']:.3f}"
    save_figure(extremes.figure(title), out_dir / CASES)
    atomic_write_json(out_dir / SUMMARY, summary)
    return summary


# ---- command line ------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_model_arguments(parser, batch_size=16)
    parser.add_argument(
        "--dataset",
        metavar="NAME",
        help=f"evaluate on this dataset ({', '.join(SOURCES)}); default: the run's own. "
        "Another one is a cross-domain evaluation",
    )
    parser.add_argument(
        "--data",
        metavar="DATA_DIR",
        help="folder holding the prepared <dataset>/ (python -m data_download); default: the run's",
    )
    parser.add_argument(
        "--split",
        metavar="SPLIT",
        help="train, val, test or all; default: test, or all for a cross-domain evaluation",
    )
    parser.add_argument(
        "--out", required=True, metavar="EVAL_DIR", help="folder for summary.json and the rest"
    )
    parser.add_argument(
        "--image-size",
        type=int,
        help="evaluation resolution, a multiple of 8; default: the model's (224 for the paper)",
    )
    parser.add_argument(
        "--num-workers", type=int, default=0, help="data loading processes (2-4 on a GPU)"
    )
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


PRIOR_MARGIN = 0.1  # a model this close to the constant mask has learned little appearance


def run(args: argparse.Namespace) -> int:
    summary = evaluate(
        model_folder(args),
        dataset=args.dataset,
        data_dir=args.data,
        split=args.split,
        out_dir=args.out,
        image_size=args.image_size,
        batch_size=args.batch_size,
        device=args.device,
        num_workers=args.num_workers,
        precision=args.precision,
        progress=not args.no_progress,
        threads=args.threads,
    )
    print(
        f"{summary['description']}, {summary['split']} split, {summary['n_images']} images: "
        f"Dice {summary['dice_mean']:.4f} +- {summary['dice_std']:.4f} "
        f"(pooled {summary['dice_pooled']:.4f}), IoU {summary['iou_mean']:.4f}, "
        f"HD95 {summary['hd95_mean']:.2f} px -> {args.out}"
    )
    empty, n = summary["n_gt_empty"], summary["n_images"]
    if empty == n:
        print(
            f"every ground-truth mask is empty ({empty}/{n}): Dice is 1 where the model finds "
            "nothing too and 0 where it finds anything, so it counts false alarms, not "
            "segmentation quality; evaluate on images with lesions for that"
        )
        return 0
    if empty:
        print(
            f"{empty} of {n} ground-truth masks are empty (Dice 1 there only if nothing is found)"
        )
    prior = summary["prior_dice_mean"]
    if prior is None:
        print(f"constant-mask baseline: {summary['prior_source']}")
        return 0
    print(f"constant-mask baseline: Dice {prior:.4f} (from {summary['prior_source']})")
    if summary["dice_mean"] < prior + PRIOR_MARGIN:
        print(
            f"close to a constant mask (Dice {summary['dice_mean']:.3f} vs {prior:.3f}): the "
            "model has learned where lesions usually are, not what they look like"
        )
    return 0


__all__ = ["evaluate", "select_items"]
