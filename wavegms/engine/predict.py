"""Inference on image files: :func:`predict_files` and ``wavegms predict``.

Each image is resized to the model's size (bilinear, antialiased, as the datasets do), the
foreground probabilities are resized back to the image's own size (bilinear) and thresholded,
so a mask lines up pixel for pixel with its image. Behaviour on bad files, repeated stems and
the exit status are stated in ``DESCRIPTION`` below (the command's ``--help``).
"""

from __future__ import annotations

import argparse
import os
import stat
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import AutoencoderTiny
from tqdm.auto import tqdm

from ..data.images import (
    IMAGE_EXTENSIONS,
    load_image,
    png_software,
    save_mask_png,
    save_png,
    to_uint8,
)
from ..data.tensors import resize_image
from ..model import WaveGMS, check_pixels
from ..utils.device import PRECISIONS, get_device
from ..utils.memory import explain_out_of_memory
from ..utils.progress import show_bars
from ..utils.threads import configure_threads
from .checkpoint import load_model, load_train_config, resolve_checkpoint
from .viz import overlay

HELP = "segment image files with a trained model (one mask PNG per image)"
DESCRIPTION = """
Segment image files (PNG, JPEG, BMP, TIFF; grey, RGB, RGBA or 16-bit) with a trained model. Each
IMAGE gets DIR/<image stem>.png: a single-channel 0/255 mask at the image's original size. A
folder given as IMAGE means the image files directly inside it. Images run in batches on the
GPU when there is one (--device cpu to force the CPU).

Unreadable files, images with NaN or off-scale pixels and masks that cannot be written are
reported on stderr and skipped; the other images still get their masks. Every name given gets
its own mask (a symlink too).
Inputs with the same stem never overwrite each other: the later one becomes <stem>-2.png. Files
in DIR are replaced only if an earlier predict wrote them: where a mask would replace an input
image (--out the folder of PNG scans) or another file (ground-truth masks), predict stops first.
Memory is bounded by pixels: a batch holds --batch-size images, or fewer large ones.
Exit status: 0 when every image got a mask, 1 when some failed, 2 when none got one or an
argument or the checkpoint is wrong (one line on stderr).

Example:
  wavegms predict --checkpoint runs/busi scans/ extra.png --out masks --save-overlay
"""


@dataclass
class PredictReport:
    """What :func:`predict_files` did.

    Attributes:
        written: the mask files written, in input order.
        failed: ``(input path, reason)`` for each image that got no mask.
        renamed: ``(input path, mask path)`` for inputs whose stem was already taken.
    """

    written: list[Path] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)
    renamed: list[tuple[Path, Path]] = field(default_factory=list)

    def __str__(self) -> str:
        written, failed = len(self.written), len(self.failed)
        masks, images = "mask" if written == 1 else "masks", "image" if failed == 1 else "images"
        return f"{written} {masks} written, {failed} {images} failed"


def expand_inputs(paths: Iterable[str | Path]) -> list[Path]:
    """Files as given, and the image files directly inside any folder (sorted), each once.

    "Once" is per name (the absolute path, symlinks not followed): a symlink with another
    name is an input of its own and gets its own mask. A path that does not exist is kept:
    reading it reports the problem like any bad file.
    """
    files: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            files += sorted(
                p
                for p in path.iterdir()
                if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS and p.name[0] != "."
            )
        else:
            files.append(path)
    seen: set[Path] = set()
    unique = []
    for file in files:
        key = Path(os.path.abspath(file))  # not resolve(): that would merge symlinked names
        if key not in seen:
            seen.add(key)
            unique.append(file)
    return unique


# Images loaded for one batch hold at most this many pixels together (one larger image goes
# alone): 8 photos of 100 megapixels would need over 10 GB, 8 ultrasound scans need 20 MB.
MAX_BATCH_PIXELS = 2**26
SOFTWARE = "wavegms predict"  # in the PNG text of every file predict writes: its own outputs


def _suffixes(save_probs: bool, save_overlay: bool) -> list[str]:
    """The file names written per image, after its stem."""
    return [".png"] + ["_prob.png"] * save_probs + ["_overlay.png"] * save_overlay


def _output_stems(files: Sequence[Path], suffixes: Sequence[str] = (".png",)) -> list[str]:
    """One output stem per input, none of whose files (``stem + suffix``) another input's
    take: repeated stems get ``-2``, ``-3``... (case-insensitively, as file systems on macOS
    and Windows are)."""
    taken: set[str] = set()
    stems = []
    for file in files:
        stem, n = file.stem, 1
        while any(f"{stem}{suffix}".lower() in taken for suffix in suffixes):
            n += 1
            stem = f"{file.stem}-{n}"
        taken.update(f"{stem}{suffix}".lower() for suffix in suffixes)
        stems.append(stem)
    return stems


def _refuse_overwriting(
    files: Sequence[Path], out_dir: Path, stems: Sequence[str], suffixes: Sequence[str]
) -> None:
    """``ValueError`` if a file predict would write exists and is not an output of predict:
    an input image (the same file, by any name: masks written into the folder of PNG scans
    would replace them), or anyone's file (ground-truth masks are named ``<stem>.png`` too).
    Earlier outputs of predict, which carry its name in their PNG text, may be replaced."""
    inputs = {}
    for file in files:
        try:
            status = file.stat()
        except OSError:  # missing or unreadable: reported when read
            continue
        inputs[status.st_dev, status.st_ino] = file
    for stem in stems:
        for suffix in suffixes:
            path = out_dir / f"{stem}{suffix}"
            try:
                status = path.stat()
            except OSError:
                continue
            if not stat.S_ISREG(status.st_mode):  # a folder in the way: that image's write fails
                continue
            image = inputs.get((status.st_dev, status.st_ino))
            if image is not None:
                what = f"the input image {image}"
            elif png_software(path) != SOFTWARE:
                what = "a file that wavegms predict did not write"
            else:
                continue
            raise ValueError(
                f"{path} would be written over {what}: nothing was written; give another "
                "folder for the masks (--out), or move that file away."
            )


def to_model_input(image: np.ndarray, size: int) -> torch.Tensor:
    """``[H, W, 3]`` float in [0, 1] -> ``[3, size, size]`` (bilinear, antialiased: the
    datasets' resize, so inference sees what training saw)."""
    tensor = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32)).permute(2, 0, 1)
    return resize_image(tensor, size)


def _resolve_model(
    checkpoint_or_model: WaveGMS | str | Path,
    device: str | torch.device | None,
    tiny_vae: AutoencoderTiny | None,
    precision: str,
) -> WaveGMS:
    if isinstance(checkpoint_or_model, WaveGMS):
        model = checkpoint_or_model
        return model.to(get_device(device)).eval() if device is not None else model.eval()
    model = load_model(checkpoint_or_model, device=device, tiny_vae=tiny_vae)
    return model.prepare_for_inference(precision)


def predict_files(
    checkpoint_or_model: WaveGMS | str | Path,
    paths: Iterable[str | Path],
    out_dir: str | Path,
    *,
    batch_size: int = 8,
    device: str | torch.device | None = None,
    save_probs: bool = False,
    save_overlay: bool = False,
    threshold: float = 0.5,
    precision: str = "fp32",
    progress: bool = True,
    tiny_vae: AutoencoderTiny | None = None,
    threads: int | None = None,
) -> PredictReport:
    """Segment image files and write ``out_dir/<stem>.png`` masks at each image's original size.

    Args:
        checkpoint_or_model: a run folder, a checkpoint folder or a loaded :class:`WaveGMS`.
        paths: image files and/or folders (their image files, not recursive).
        out_dir: created if needed.
        batch_size: images per forward pass (fewer when they are large: a batch holds at most
            :data:`MAX_BATCH_PIXELS` pixels of images read, so memory is bounded by pixels).
        device: where to run (default: :func:`~wavegms.get_device`; a given model stays on its
            device unless this is set).
        save_probs: also write ``<stem>_prob.png``, the probability x 255 as 8-bit grey.
        save_overlay: also write ``<stem>_overlay.png``, the mask tinted on the image.
        threshold: foreground where the probability is above this.
        precision: ``"fp32"`` or mixed precision (``"bf16"``, ``"fp16"``, ``"auto"``), see
            :meth:`WaveGMS.predict`. A model loaded here from a path is made ready for it with
            :meth:`WaveGMS.prepare_for_inference` (channels-last, bf16 weights where bf16).
        progress: show a progress bar.
        tiny_vae: the frozen TAESD to use when loading from a path (default: the run's).
        threads: CPU threads (default: chosen, see :mod:`wavegms.utils.threads`).

    Returns:
        A :class:`PredictReport`; unreadable images are in ``failed`` with the reason.

    Raises:
        ValueError: a file it would write exists and is an input, or was not written by
            predict (nothing is written then).
        torch.OutOfMemoryError: a batch did not fit in the device's memory; one line saying
            what to lower, raised after the batch's memory was freed (masks already written
            stay).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    if not 0 < threshold < 1:
        raise ValueError(f"threshold must be between 0 and 1, got {threshold}")
    files = expand_inputs(paths)
    if not files:
        raise FileNotFoundError("No input images: give image files or folders that hold some.")
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise NotADirectoryError(f"{out_dir} is a file: give a folder for the masks as --out.")
    # out_dir is made with the first mask: a run that fails before leaves no empty folder.
    suffixes = _suffixes(save_probs, save_overlay)
    stems = _output_stems(files, suffixes)
    _refuse_overwriting(files, out_dir, stems, suffixes)
    configure_threads(threads)
    model = _resolve_model(checkpoint_or_model, device, tiny_vae, precision)
    size = model.config.image_size
    report = PredictReport()
    bar = tqdm(total=len(files), desc="predict", unit="img", disable=not show_bars(progress))

    def segment() -> None:  # the batch in flight lives in this frame: freed on running out
        for batch in _batches(files, stems, size, batch_size, save_overlay, report.failed, bar):
            probs = model.predict(torch.stack([item.input for item in batch]), precision=precision)
            for item, prob in zip(batch, probs):
                try:
                    written = _write_outputs(prob, item, out_dir, threshold, save_probs)
                except OSError as error:  # this image's files only: the others go on
                    report.failed.append((item.file, f"could not write its mask: {error}"))
                    continue
                report.written.append(written)
                if item.stem != item.file.stem:
                    report.renamed.append((item.file, written))
            bar.update(len(batch))

    try:
        doing = f"segmenting batches of {batch_size} images"
        fixes = inference_fixes(batch_size, precision, model.device)
        explain_out_of_memory(segment, model.device, doing, fixes)
    finally:
        bar.close()
    return report


@dataclass
class _Loaded:
    """An image read for a batch: what its outputs need, and no more of it."""

    file: Path
    stem: str
    input: torch.Tensor  # [3, S, S], what the model sees
    height: int
    width: int
    image: np.ndarray | None  # uint8 [H, W, 3], kept for the overlay only

    @property
    def pixels(self) -> int:
        return self.height * self.width


def _batches(
    files: Sequence[Path],
    stems: Sequence[str],
    size: int,
    batch_size: int,
    keep_image: bool,
    failed: list[tuple[Path, str]],
    bar: tqdm,
) -> Iterator[list[_Loaded]]:
    """The readable images, loaded in batches of at most ``batch_size`` images and
    :data:`MAX_BATCH_PIXELS` pixels (a larger image goes alone); one that cannot be read or
    holds bad pixels goes to ``failed`` with the reason."""
    batch: list[_Loaded] = []
    pixels = 0
    for file, stem in zip(files, stems):
        try:
            item = _load(file, stem, size, keep_image)
        except (ValueError, OSError) as error:  # corrupt, missing, unreadable, bad pixels
            failed.append((file, " ".join(str(error).split())))
            bar.update(1)
            continue
        if batch and pixels + item.pixels > MAX_BATCH_PIXELS:
            yield batch
            batch, pixels = [], 0
        batch.append(item)
        pixels += item.pixels
        if len(batch) == batch_size:
            yield batch
            batch, pixels = [], 0
    if batch:
        yield batch


def _load(file: Path, stem: str, size: int, keep_image: bool) -> _Loaded:
    image = load_image(file)
    check_pixels(image)  # NaN or off-scale pixels would give a wrong mask silently
    height, width = image.shape[:2]
    kept = to_uint8(image) if keep_image else None  # 4x smaller than the float image
    return _Loaded(file, stem, to_model_input(image, size), height, width, kept)


def _write_outputs(
    prob: torch.Tensor, item: _Loaded, out_dir: Path, threshold: float, save_probs: bool
) -> Path:
    """Resize ``prob [1, S, S]`` to ``item``'s size and write the mask (and extras)."""
    size = (item.height, item.width)
    full = F.interpolate(prob[None].float(), size=size, mode="bilinear", align_corners=False)
    full = full[0, 0].clamp_(0, 1).cpu().numpy()
    mask = full > threshold
    mask_path = out_dir / f"{item.stem}.png"
    save_mask_png(mask, mask_path, software=SOFTWARE)
    if save_probs:
        save_png(to_uint8(full), out_dir / f"{item.stem}_prob.png", software=SOFTWARE)
    del full
    if item.image is not None:
        overlaid = _overlay_uint8(item.image, mask)
        save_png(overlaid, out_dir / f"{item.stem}_overlay.png", software=SOFTWARE)
    return mask_path


def _overlay_uint8(image: np.ndarray, mask: np.ndarray, rows_pixels: int = 2**22) -> np.ndarray:
    """:func:`~wavegms.engine.viz.overlay` of uint8 ``image [H, W, 3]``, as uint8, a strip of
    rows at a time: float copies of a whole 100-megapixel image would take gigabytes."""
    out = np.empty_like(image)
    step = max(1, rows_pixels // max(1, image.shape[1]))
    for top in range(0, image.shape[0], step):
        rows = slice(top, top + step)
        out[rows] = to_uint8(overlay(image[rows].astype(np.float32) / 255, mask[rows]))
    return out


# ---- command line ------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_model_arguments(parser, batch_size=8)
    parser.add_argument(
        "images", nargs="+", metavar="IMAGE", help="image files, or folders of images"
    )
    parser.add_argument(
        "--out", required=True, metavar="DIR", help="folder for the masks (<image stem>.png)"
    )
    parser.add_argument(
        "--threshold", type=float, default=0.5, help="foreground where probability > this"
    )
    parser.add_argument(
        "--save-probs", action="store_true", help="also write <stem>_prob.png (8-bit probability)"
    )
    parser.add_argument("--save-overlay", action="store_true", help="also write <stem>_overlay.png")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def add_model_arguments(parser: argparse.ArgumentParser, batch_size: int) -> None:
    """What every command that runs a trained model takes (``predict``, ``evaluate``)."""
    model = parser.add_mutually_exclusive_group(required=True)
    model.add_argument(
        "--checkpoint",
        metavar="RUN_DIR",
        help="a run folder from `wavegms train` (uses best/), or a checkpoint folder",
    )
    model.add_argument(
        "--pretrained",
        metavar="NAME",
        help="a model shipped with wavegms (busi: breast ultrasound), a hub id or a folder",
    )
    parser.add_argument(
        "--batch-size", type=int, default=batch_size, help="images per forward pass"
    )
    parser.add_argument(
        "--device", default="auto", help="cpu, cuda, cuda:1, mps or auto (GPU when available)"
    )
    parser.add_argument(
        "--precision",
        choices=PRECISIONS,
        default="fp32",
        help="fp32 (exact), or mixed precision: bf16, fp16 (GPU), auto (fastest the hardware "
        "runs natively; masks agree with fp32 on >98%% of pixels)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        metavar="N",
        help="CPU threads (default: the cores other work leaves free, or $WAVEGMS_THREADS)",
    )


def inference_fixes(batch_size: int, precision: str, device: torch.device) -> list[str]:
    """What lowers the memory of ``predict`` or ``evaluate`` on ``device``, for an
    out-of-memory error."""
    fixes = [f"lower --batch-size (e.g. {batch_size // 2})"] if batch_size > 1 else []
    if precision == "fp32":
        fixes.append("use --precision auto (mixed precision)")
    if device.type != "cpu":
        fixes.append("use --device cpu (slower)")
    return fixes or ["free memory that other programs hold"]


def model_folder(args: argparse.Namespace) -> Path:
    """The checkpoint folder that ``--checkpoint`` or ``--pretrained`` names."""
    from ..pretrained import resolve

    return Path(args.checkpoint) if args.checkpoint else resolve(args.pretrained)


def run(args: argparse.Namespace) -> int:
    folder = model_folder(args)
    report = predict_files(
        folder,
        args.images,
        args.out,
        batch_size=args.batch_size,
        device=args.device,
        save_probs=args.save_probs,
        save_overlay=args.save_overlay,
        threshold=args.threshold,
        precision=args.precision,
        progress=not args.no_progress,
        threads=args.threads,
    )
    for file, reason in report.failed:
        print(f"wavegms predict: skipped {file}: {reason}", file=sys.stderr)
    for file, mask_path in report.renamed:
        print(f"wavegms predict: {file} shares its name with another input: wrote {mask_path}")
    if not report.written:
        raise ValueError(f"no mask written: every image failed ({len(report.failed)}, see above)")
    print(f"wavegms predict: {report} -> {args.out}")
    config = load_train_config(resolve_checkpoint(folder))
    if config is not None and config.dataset == "synthetic":
        print(
            "wavegms predict: note: this model was trained on synthetic images; for breast "
            "ultrasound use --pretrained busi"
        )
    return 1 if report.failed else 0


__all__ = ["PredictReport", "expand_inputs", "predict_files", "to_model_input"]
