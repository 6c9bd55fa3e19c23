"""Benchmark Wave-GMS: training and inference speed and memory, on CPU or GPU.

    python benchmarks/bench.py --device cpu --out results.json

Reports, as a printed table and as JSON:

* training: images/s of a full optimisation step (the objective over all heads, backward, AdamW)
  per batch size and variant, with peak memory (CUDA max allocated on GPU, peak RSS on CPU);
* the frozen floor of the same batch, measured in the same run: the TAESD work a step cannot
  avoid (encoding image and mask, and the decoder's forward and backward over the supervised
  heads), in plain fp32; ``floor_ratio`` = step time / floor time;
* inference: latency per image and images/s of ``WaveGMS.predict`` at batch 1 and 16, beside the
  plain-fp32 TAESD decoder alone at the same batch;
* the training loop: a real :func:`wavegms.engine.train.train` epoch over ``--loop-images``
  BUSI-like images (PNG files read through the run's loaders) at batch 12 on the ``fast`` path,
  against the isolated ``fast`` step at batch 12 of the same run: ``loop_efficiency`` = steps x
  step time / the epoch's training time (validation excluded, and reported beside it);
* on a GPU, the largest training batch that fits a 12 GB and a 16 GB card (:data:`MEMORY_RULE`);
* the machine, library versions, and the median of ``--repeats`` runs after ``--warmup``.

Variants: ``fp32`` (the paper's setting), ``fast`` (mixed precision where the hardware runs it —
bf16 on recent CPUs and GPUs, fp16 on older GPUs — with channels-last memory format), ``lowmem``
(``fast`` plus gradient checkpointing of the TAESD decoder; training only, default on GPUs),
``fp16`` (fp16 with a gradient scaler and channels-last; GPUs, and CPUs where torch emulates it).
Every variant is checked for equivalence with fp32 by ``tests/test_fast_path.py``.

A run that goes out of GPU memory loses nothing: that contender is recorded as out of memory
(``"oom": true``), its memory is freed, and the others go on.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import math
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import torch

import wavegms
from wavegms.data.layout import IMAGES, MASKS, list_names, read_info, scan_layout, write_info
from wavegms.data.splits import EXCLUDED_CLASSES, SPLITS_FILE, Splits
from wavegms.data.synthetic import SyntheticDataset, export_synthetic
from wavegms.engine.config import preset
from wavegms.engine.train import optimisation_step, train
from wavegms.losses import WaveGMSLoss
from wavegms.model import WaveGMS
from wavegms.tiny_vae import load_tiny_vae
from wavegms.utils.device import autocast, get_device, grad_scaler, resolve_precision
from wavegms.utils.errors import error_line


@dataclass(frozen=True)
class Variant:
    name: str
    precision: str  # as wavegms.utils.device.resolve_precision takes it
    channels_last: bool
    gradient_checkpointing: bool = False  # training only: inference keeps no activations


VARIANTS = {
    "fp32": Variant("fp32", "fp32", False),
    "fp32-cl": Variant("fp32-cl", "fp32", True),
    "amp": Variant("amp", "auto", False),
    "fast": Variant("fast", "auto", True),
    "lowmem": Variant("lowmem", "auto", True, gradient_checkpointing=True),
    "fp16": Variant("fp16", "fp16", True),  # what `auto` runs on GPUs before Ampere (T4)
}

LOOP_BATCH = 12  # the paper's batch: the training loop is measured there
LOOP_VARIANT = "fast"  # ... on the fast path, as the README recommends training

# A "16 GB" card does not give a process 16 GiB: a T4, sold as 16 GB, reports 14.75 GiB in all
# (ECC takes 1/16), and the CUDA context takes 0.3-0.5 GiB of that outside PyTorch's allocator.
CARD_USABLE = 14.75 / 16
MEMORY_RULE = (
    "a batch fits a C GB card when PyTorch's peak reserved memory plus the CUDA context (what "
    f"nvidia-smi shows for the process) stays within {CARD_USABLE:.3f} x C GiB, what a T4 "
    "sold as 16 GB offers (14.75 GiB)"
)


def card_budget_mb(card_gb: float) -> float:
    """The memory a process may use in all on a ``card_gb`` GB card, in MB (:data:`MEMORY_RULE`)."""
    return CARD_USABLE * card_gb * 1024


def runs_on(variant: Variant, device: torch.device) -> bool:
    """Whether ``device`` runs ``variant``'s precision (fp16: a GPU, or a CPU where this torch
    runs fp16 autocast and a CPU gradient scaler, emulated and slow)."""
    try:
        resolve_precision(variant.precision, device)
    except ValueError:
        return False
    return True


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:1, mps or auto")
    parser.add_argument(
        "--batch-sizes",
        type=int,
        nargs="+",
        default=None,
        help="training batch sizes (default: 1 4 12 32; on GPU also doubling up to 256)",
    )
    parser.add_argument("--predict-batch-sizes", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument(
        "--variants",
        nargs="+",
        default=None,
        choices=sorted(VARIANTS),
        help="fp32: plain; fast: mixed precision + channels-last; lowmem: fast + gradient "
        "checkpointing; fp16: fp16 + gradient scaler + channels-last (GPU); amp / fp32-cl: one "
        "of each (default: fp32 fast; on GPU also lowmem)",
    )
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per measurement")
    parser.add_argument("--warmup", type=int, default=1, help="untimed runs before timing")
    parser.add_argument(
        "--time-budget",
        type=float,
        default=100.0,
        help="seconds per measurement after which repeats stop (at least one timed run)",
    )
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--taesd", default=None, help="TAESD hub id or folder")
    parser.add_argument(
        "--memory-caps-gb",
        type=float,
        nargs="*",
        default=[12.0, 16.0],
        help="GPU only: find the largest batch that fits a card of each size (GB as sold: a "
        f"C GB card offers {CARD_USABLE:.3f} x C GiB in all, CUDA context included)",
    )
    parser.add_argument(
        "--loop-images",
        type=int,
        default=48,
        help=f"training images of the measured training-loop epoch (batch {LOOP_BATCH}); 0: skip",
    )
    parser.add_argument(
        "--loop-epochs",
        type=int,
        default=1,
        help="epochs of the training loop; loop_efficiency is the last one's (the first "
        "includes starting the loader workers and decoding every PNG once)",
    )
    parser.add_argument(
        "--data",
        type=Path,
        default=None,
        metavar="DATA_DIR",
        help="train the loop on real BUSI images: DATA_DIR holds a prepared busi/ "
        "(python -m data_download busi --root DATA_DIR [--source Dataset_BUSI_with_GT]); "
        "default: synthetic ultrasound images written as PNG",
    )
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    args = parser.parse_args(argv)
    if args.image_size % 8:
        parser.error(f"--image-size must be a multiple of 8, got {args.image_size}")
    if args.loop_images < 0 or args.loop_epochs < 1:
        parser.error(
            f"--loop-images must be 0 or more and --loop-epochs at least 1, got "
            f"{args.loop_images} and {args.loop_epochs}"
        )
    return args


# ---- measuring --------------------------------------------------------------------------------


def dtype_name(variant: Variant, device: torch.device) -> str:
    """The precision ``variant`` computes in on ``device``: "float32", "bfloat16", "float16"."""
    return str(resolve_precision(variant.precision, device) or torch.float32).removeprefix("torch.")


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def median_seconds(
    fns: dict[str, Callable[[], object]],
    device: torch.device,
    repeats: int,
    warmup: int,
    budget_s: float = 100.0,
) -> dict[str, tuple[float, list[float]]]:
    """Median wall time of each of ``fns``, run in turn: round r times every function once.

    Taking turns puts the functions under the same machine load, so their ratio stays fair on a
    noisy shared machine. Rounds stop early, after at least one timed round, once the whole
    measurement has taken ``budget_s`` (warm-up included): large CPU batches take minutes.
    A function that runs out of memory (warm-up or any round) is dropped, its memory freed, and
    the others go on: it has no entry in the result.
    """
    fns = dict(fns)
    started = time.perf_counter()
    for _ in range(warmup):
        for name, fn in list(fns.items()):
            if timed(fn, device) is None:
                del fns[name]
    times: dict[str, list[float]] = {name: [] for name in fns}
    rounds = 0
    while fns and rounds < repeats and (not rounds or time.perf_counter() - started < budget_s):
        for name, fn in list(fns.items()):
            seconds = timed(fn, device)
            if seconds is None:
                del fns[name], times[name]
            else:
                times[name].append(seconds)
        rounds += 1
    return {name: (statistics.median(t), t) for name, t in times.items()}


def timed(fn: Callable[[], object], device: torch.device) -> float | None:
    """Seconds ``fn()`` took (the device synchronised), or None if it ran out of memory."""
    start = time.perf_counter()
    try:
        fn()
        synchronize(device)
        return time.perf_counter() - start
    except RuntimeError as error:
        if not is_oom(error):
            raise
    # Out of the except block: its traceback held the failed call's tensors until here.
    free_memory(device)
    return None


def is_oom(error: BaseException) -> bool:
    return isinstance(error, torch.OutOfMemoryError) or "out of memory" in str(error).lower()


def free_memory(device: torch.device) -> None:
    """Hand the memory of freed tensors back to the device (after an out-of-memory error)."""
    if device.type == "cuda":
        synchronize(device)
        torch.cuda.empty_cache()


def cuda_context_mb(device: torch.device) -> float:
    """MB of ``device`` memory this process holds outside PyTorch's caching allocator: the CUDA
    context with the kernels loaded so far and the cuBLAS / cuDNN handles (0.3-0.5 GiB).

    Measured as the device's used memory minus what the allocator reserved, so memory of other
    processes on the same GPU counts too (an overestimate, never an underestimate).
    """
    free, total = torch.cuda.mem_get_info(device)
    return (total - free - torch.cuda.memory_reserved(device)) / 2**20


class PeakMemory:
    """Peak memory of the block in MB.

    ``mb``: CUDA max allocated (the tensors), or the process's peak RSS on CPU.
    ``process_mb``: the process at its peak as nvidia-smi counts it: the caching allocator's
    peak reserved memory plus the CUDA context (:func:`cuda_context_mb`, measured at the end of
    the block); on CPU the peak RSS. ``added_mb``: ``process_mb`` above its value at entry.
    """

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.mb: float | None = None
        self.process_mb: float | None = None
        self.added_mb: float | None = None
        self._entry_mb: float | None = None

    def __enter__(self) -> PeakMemory:
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(self.device)
            reserved = torch.cuda.memory_reserved(self.device) / 2**20
            self._entry_mb = reserved + cuda_context_mb(self.device)
        else:
            _reset_peak_rss()
            self._entry_mb = _peak_rss_mb()  # the high-water mark just reset: the RSS now
        return self

    def __exit__(self, *exc: object) -> None:
        if self.device.type == "cuda":
            self.mb = torch.cuda.max_memory_allocated(self.device) / 2**20
            reserved = torch.cuda.max_memory_reserved(self.device) / 2**20
            self.process_mb = reserved + cuda_context_mb(self.device)
        else:
            self.mb = self.process_mb = _peak_rss_mb()
        if self.process_mb is not None and self._entry_mb is not None:
            self.added_mb = self.process_mb - self._entry_mb


def _reset_peak_rss() -> None:
    # Linux resets the high-water mark VmHWM when "5" is written to clear_refs.
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def _peak_rss_mb() -> float | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    try:
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    except ImportError:
        return None


# ---- workloads --------------------------------------------------------------------------------


def make_batch(batch: int, size: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Random images with a dark disk and its mask: ``[B, 3, S, S]``, ``[B, 1, S, S]``."""
    g = torch.Generator().manual_seed(batch)
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    centre = torch.rand(batch, 2, generator=g) * size * 0.4 + size * 0.3
    radius = torch.rand(batch, generator=g) * size * 0.15 + size * 0.1
    dist = (yy - centre[:, 0, None, None]) ** 2 + (xx - centre[:, 1, None, None]) ** 2
    masks = (dist < radius[:, None, None] ** 2).float()[:, None]
    images = (0.7 - 0.4 * masks + 0.1 * torch.rand(batch, 3, size, size, generator=g)).clamp(0, 1)
    return images.to(device), masks.to(device)


class TrainStep:
    """One full optimisation step of a model prepared for ``variant``."""

    def __init__(self, model: WaveGMS, variant: Variant, device: torch.device) -> None:
        self.dtype = resolve_precision(variant.precision, device)
        self.memory_format = (
            torch.channels_last if variant.channels_last else torch.contiguous_format
        )
        self.model = model.to(device, memory_format=self.memory_format).train()
        if variant.gradient_checkpointing:
            self.model.enable_gradient_checkpointing()
        self.device = device
        self.loss_fn = WaveGMSLoss()
        self.optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=0.01)
        self.scaler = grad_scaler(device) if self.dtype == torch.float16 else None

    def __call__(self, images: torch.Tensor, masks: torch.Tensor) -> None:
        optimisation_step(
            self.model,
            self.loss_fn,
            self.optimizer,
            images.contiguous(memory_format=self.memory_format),
            masks,
            dtype=self.dtype,
            scaler=self.scaler,
        )


def frozen_floor(model: WaveGMS, images: torch.Tensor, masks: torch.Tensor) -> None:
    """The TAESD work of one training step, plain fp32: two encodes, decoder fwd + bwd."""
    teacher, mask_latent = model.encode_targets(images, masks)
    heads = mask_latent.repeat(3, 1, 1, 1).requires_grad_(True)  # 3 supervised heads
    model.decode(heads).sum().backward()


# ---- the benchmark ----------------------------------------------------------------------------


def saved_activation_mb(base: WaveGMS, variant: Variant, device: torch.device, size: int) -> float:
    """MB of tensors autograd keeps for the backward pass, per image, in ``variant``.

    Device-independent (it counts tensor bytes), so a CPU run can tell how GPU memory grows with
    the batch. Peak GPU memory is higher: backward adds transient gradient buffers on top.
    """
    seen: dict[int, int] = {}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        seen[storage.data_ptr()] = storage.nbytes()
        return tensor

    batch = 2
    step = TrainStep(copy.deepcopy(base), variant, device)
    images, masks = make_batch(batch, size, device)
    images = images.contiguous(memory_format=step.memory_format)
    hooks = torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t)
    with hooks, autocast(device, step.dtype):
        step.loss_fn(step.model(images, masks), masks)["total"]
    return sum(seen.values()) / 2**20 / batch


def machine_info(device: torch.device) -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info = {
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cpu_capability": getattr(torch.backends.cpu, "get_cpu_capability", lambda: None)(),
        "device": str(device),
        "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
        "gpu_memory_gb": (
            round(torch.cuda.get_device_properties(device).total_memory / 2**30, 2)
            if device.type == "cuda"
            else None
        ),
        "gpu_capability": (
            "{}.{}".format(*torch.cuda.get_device_capability(device))
            if device.type == "cuda"
            else None
        ),
        "platform": platform.platform(),
        "python": platform.python_version(),
    }
    versions = {
        "wavegms": wavegms.__version__,
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if device.type == "cuda" else None,
    }
    for name in ("diffusers", "ptwt", "PyWavelets", "monai", "numpy"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    info["versions"] = versions
    return info


def bench_training(args, base: WaveGMS, device: torch.device, batch_sizes: list[int]) -> list:
    """Per batch size: the frozen floor and a step of every variant, timed in turns.

    The warm-up run of each contender is also its peak-memory measurement. A contender that runs
    out of memory gets a row with ``"oom": true``; larger batches are tried while any fit.
    """
    rows = []
    floor_model = copy.deepcopy(base).to(device)
    for batch in batch_sizes:
        images, masks = make_batch(batch, args.image_size, device)
        contenders, memory = {}, {}
        contenders["floor"] = lambda m=floor_model, x=images, y=masks: frozen_floor(m, x, y)
        for name in args.variants:
            # A deep copy has its own TAESD: one contender's memory format leaves the others'.
            step = TrainStep(copy.deepcopy(base), VARIANTS[name], device)
            contenders[name] = lambda s=step, x=images, y=masks: s(x, y)
        for name, fn in list(contenders.items()):
            with PeakMemory(device) as mem:
                fits = all(timed(fn, device) is not None for _ in range(max(args.warmup, 1)))
            if fits:
                memory[name] = mem
            else:
                del contenders[name]
                print(f"batch {batch:4d}  {name:8s} out of memory (warm-up)")
        medians = median_seconds(contenders, device, args.repeats, 0, args.time_budget)
        for name in set(contenders) - set(medians):
            print(f"batch {batch:4d}  {name:8s} out of memory (timed rounds)")
        floor_s, floor_times = medians.pop("floor", (None, None))
        if floor_s is not None:
            print(f"batch {batch:4d}  frozen floor (fp32)   {floor_s:8.3f} s")
        for name in args.variants:
            row = {
                "batch": batch,
                "variant": name,
                "floor_s": floor_s,
                "floor_times_s": floor_times,
                "floor_peak_mb": memory["floor"].mb if "floor" in memory else None,
            }
            if name not in medians:
                rows.append({**row, "oom": True})
                continue
            seconds, times = medians[name]
            row.update(
                step_s=seconds,
                times_s=times,
                images_per_s=batch / seconds,
                floor_ratio=seconds / floor_s if floor_s else None,
                peak_mb=memory[name].mb,
                process_peak_mb=memory[name].process_mb,
                dtype=dtype_name(VARIANTS[name], device),
            )
            rows.append(row)
            ratio = f"floor x{row['floor_ratio']:5.2f}" if floor_s else "floor out of memory"
            print(
                f"batch {batch:4d}  {name:8s} step {seconds:8.3f} s  "
                f"{batch / seconds:8.1f} img/s  {ratio}  "
                f"peak {memory[name].mb or float('nan'):8.0f} MB"
            )
        contenders = step = None
        free_memory(device)
        if not medians:
            break  # nothing fits this batch: larger ones will not fit either
    return rows


def bench_predict(args, base: WaveGMS, device: torch.device) -> tuple[list, dict]:
    """``predict`` per variant and the plain-fp32 TAESD decoder alone, timed in turns."""
    rows, decoder_alone = [], {}
    latent = args.image_size // 8
    vae = copy.deepcopy(base.tiny_vae).to(device, memory_format=torch.contiguous_format)
    models = {}
    for name in args.variants:
        variant = VARIANTS[name]
        if variant.gradient_checkpointing:
            continue  # the same inference as its variant without
        fmt = torch.channels_last if variant.channels_last else torch.contiguous_format
        model = copy.deepcopy(base).to(device)
        if name == "fast":  # what `wavegms predict --precision auto` runs
            model.prepare_for_inference(variant.precision)
        else:
            model.to(memory_format=fmt).eval()
        models[name] = (model, fmt, variant.precision)
    for batch in args.predict_batch_sizes:
        images, _ = make_batch(batch, args.image_size, device)
        z = torch.randn(batch, 4, latent, latent, device=device)
        contenders = {"decoder": lambda z=z: vae.decode(z)}
        for name, (model, fmt, precision) in models.items():
            x = images.contiguous(memory_format=fmt)
            contenders[name] = lambda m=model, x=x, p=precision: m.predict(x, precision=p)
        # Single images are quick: more rounds make their medians steady.
        repeats = args.repeats + 2 if batch > 1 else 5 * args.repeats
        with torch.inference_mode():
            medians = median_seconds(contenders, device, repeats, 2, args.time_budget)
        decoder = medians.pop("decoder", None)
        decoder_alone[batch] = 1000 * decoder[0] / batch if decoder else None
        alone = f"{decoder_alone[batch]:7.1f} ms/img" if decoder else "out of memory"
        print(f"predict batch {batch:3d}  TAESD decoder alone (fp32) {alone}")
        for name in models:
            if name not in medians:
                rows.append({"batch": batch, "variant": name, "oom": True})
                print(f"predict batch {batch:3d}  {name:8s} out of memory")
                continue
            seconds, times = medians[name]
            ms = 1000 * seconds / batch
            rows.append(
                {
                    "batch": batch,
                    "variant": name,
                    "ms_per_image": ms,
                    "images_per_s": batch / seconds,
                    "times_s": times,
                    "decoder_alone_ms_per_image": decoder_alone[batch],
                }
            )
            ratio = f"  decoder-alone x{ms / decoder_alone[batch]:4.2f}" if decoder else ""
            print(
                f"predict batch {batch:3d}  {name:8s} {ms:7.1f} ms/img  "
                f"{batch / seconds:7.1f} img/s{ratio}"
            )
        contenders = None
        free_memory(device)
    return rows, decoder_alone


def largest_batch(
    args, base: WaveGMS, device: torch.device, budget_mb: float, name: str, known: int = 0
) -> int | None:
    """Largest training batch of variant ``name`` whose steps fit in ``budget_mb`` (search).

    On a GPU the budget is the whole process as nvidia-smi counts it (:class:`PeakMemory`'s
    ``process_mb``: the allocator's peak reserved memory plus the CUDA context), enforced by
    capping the allocator at the budget less the context measured before each trial, so that a
    trial over it fails with an out-of-memory error, which is caught. On a CPU (a dry run) it is
    the peak RSS a trial adds, checked after the trial. ``known``: a batch known to fit (e.g.
    under a smaller budget). Returns 0 when not even batch 1 fits; None when the GPU has less
    memory than the budget (by more than 1%).
    """
    cuda = device.type == "cuda"
    total = torch.cuda.get_device_properties(device).total_memory if cuda else None
    if cuda:
        # A T4 reports 14.74-14.76 GiB: a GPU within 1% of the budget is that card.
        if budget_mb * 2**20 > 1.01 * total:
            return None
        budget_mb = min(budget_mb, total / 2**20)

    def trial(batch: int) -> None:
        # Two steps: the second holds the optimizer state the first created, and its gradients.
        images, masks = make_batch(batch, args.image_size, device)
        step = TrainStep(copy.deepcopy(base), VARIANTS[name], device)
        step(images, masks)
        step(images, masks)

    def fits(batch: int) -> bool:
        if cuda:
            allowed = budget_mb - cuda_context_mb(device)
            torch.cuda.set_per_process_memory_fraction(max(allowed, 0) * 2**20 / total, device)
        with PeakMemory(device) as mem:
            ran = timed(lambda: trial(batch), device) is not None
        free_memory(device)
        used = mem.process_mb if cuda else mem.added_mb
        return ran and used is not None and used <= budget_mb

    try:
        return largest_fitting(fits, known=known) or 0
    finally:
        if cuda:
            torch.cuda.set_per_process_memory_fraction(1.0, device)


def largest_fitting(fits: Callable[[int], bool], limit: int = 4096, known: int = 0) -> int | None:
    """The largest batch ``b <= limit`` with ``fits(b)``, assuming every smaller batch fits too.

    Doubles from ``known`` (a batch known to fit; 0: none) until a batch fails, then bisects:
    about 2 log2(b / known) trials. None if nothing fits.
    """
    low, high = known, max(2 * known, 1)
    while high <= limit and fits(high):
        low, high = high, high * 2
    high = min(high, limit + 1)
    while high - low > 1:
        mid = (low + high) // 2
        low, high = (mid, high) if fits(mid) else (low, mid)
    return low or None


def find_max_batches(
    args, base: WaveGMS, device: torch.device, budgets_mb: dict[float, float], variants: list
) -> list[dict]:
    """:func:`largest_batch` of each variant under each budget (``label -> MB``, searched from
    the smallest: what fits a smaller budget starts the search for the next)."""
    rows, found = [], {}
    for label, budget in sorted(budgets_mb.items(), key=lambda item: item[1]):
        for name in variants:
            batch = largest_batch(args, base, device, budget, name, known=found.get(name) or 0)
            found[name] = batch if batch is not None else found.get(name)
            dtype = dtype_name(VARIANTS[name], device)
            row = {"cap_gb": label, "budget_mb": budget, "variant": name, "dtype": dtype}
            rows.append({**row, "batch": batch})
            print(f"largest batch within {budget / 1024:.2f} GiB, {name} ({dtype}): {batch}")
    return rows


def bench_loop(args, base: WaveGMS, device: torch.device, train_rows: list) -> dict:
    """A real training run (:func:`train`, ``--loop-epochs`` epochs) against its isolated steps.

    ``loop_efficiency`` = steps x the isolated step time / the epoch's ``train_time_s``: the
    training part of the epoch (loading, decoding and augmenting batches, the steps, the loss
    sums), without validation (``val_time_s``, reported beside it) and checkpointing. 1.0: the
    loop adds nothing to its steps. The run trains the ``fast`` step variant's settings at
    batch 12 on ``--loop-images`` PNG files (:func:`busi_like_data`) through the run's own loaders,
    with the ``busi`` preset's other settings (augmentation, loader workers) as they are.
    """
    variant = VARIANTS[LOOP_VARIANT]
    n_val = LOOP_BATCH  # one validation batch
    step_s = next(
        (
            r["step_s"]
            for r in train_rows
            if (r["batch"], r["variant"]) == (LOOP_BATCH, LOOP_VARIANT) and "step_s" in r
        ),
        None,
    )
    step_from = "the training table"
    if step_s is None:
        images, masks = make_batch(LOOP_BATCH, args.image_size, device)
        step = TrainStep(copy.deepcopy(base), variant, device)
        timings = median_seconds(
            {LOOP_VARIANT: lambda: step(images, masks)},
            device,
            args.repeats,
            max(args.warmup, 1),
            args.time_budget,
        )
        images = masks = step = None
        free_memory(device)
        step_s = timings[LOOP_VARIANT][0] if timings else None
        step_from = "a step measured for the loop"
    loop = {"images": args.loop_images, "batch": LOOP_BATCH, "variant": LOOP_VARIANT}
    if step_s is None:
        print(f"training loop: batch {LOOP_BATCH} ({LOOP_VARIANT}) is out of memory")
        return {**loop, "oom": True}
    with tempfile.TemporaryDirectory(prefix="wavegms-bench-") as tmp:
        settings, source = busi_like_data(
            Path(tmp) / "data", args.loop_images, n_val, args.image_size, args.data
        )
        config = preset(
            "busi",
            **settings,
            epochs=args.loop_epochs,
            batch_size=LOOP_BATCH,
            precision=variant.precision,
            channels_last=variant.channels_last,
            device=str(device),
            taesd=args.taesd,
        )
        # A copy: the run converts its TAESD's memory format in place.
        vae = copy.deepcopy(base.tiny_vae)
        try:
            run = train(config, Path(tmp) / "run", progress=False, tiny_vae=vae)
        except RuntimeError as error:
            if not is_oom(error):
                raise
            run = None
        vae = None
        free_memory(device)
        if run is None:
            print("training loop: out of memory")
            return {**loop, "oom": True, "step_s": step_s}
        trained = len(Splits.load(run.run_dir / SPLITS_FILE).train)
    steps = math.ceil(trained / LOOP_BATCH)
    epochs = [
        {
            "epoch": record["epoch"],
            "train_time_s": record["train_time_s"],
            "val_time_s": record.get("val_time_s"),
            "loop_efficiency": steps * step_s / record["train_time_s"],
        }
        for record in run.history
    ]
    for e in epochs:
        print(
            f"training loop, epoch {e['epoch']}: {steps} steps of batch {LOOP_BATCH} in "
            f"{e['train_time_s']:.2f} s, isolated steps {steps} x {step_s:.3f} s: loop "
            f"efficiency {e['loop_efficiency']:.2f}; validation ({n_val} images) "
            f"{e['val_time_s'] or float('nan'):.2f} s"
        )
    return {
        **loop,
        "images": trained,
        "steps": steps,
        "step_s": step_s,
        "step_from": step_from,
        "dtype": dtype_name(variant, device),
        "data": source,
        "val_images": n_val,
        "num_workers": config.num_workers,
        "augment": config.augment,
        "epochs": epochs,
        "loop_efficiency": epochs[-1]["loop_efficiency"],
    }


def busi_like_data(
    data_dir: Path, n_train: int, n_val: int, image_size: int, source: Path | None = None
) -> tuple[dict, str]:
    """Write BUSI-like items to ``data_dir/busi`` (the prepared layout); returns the training
    settings (:class:`~wavegms.engine.config.TrainConfig` fields) whose split trains on exactly
    ``n_train`` of them and validates on ``n_val``, and a line saying what the items are.

    From ``source`` (a DATA_DIR holding a prepared ``busi/``): copies of its first images with
    a lesion, at their own size (the loader decodes and resizes them). Otherwise synthetic
    ultrasound images of side ``image_size`` written as PNG.
    """
    n_items = n_train + n_val + 1  # the settings need a test split; training never reads it
    root = data_dir / "busi"
    if source is None:
        export_synthetic(SyntheticDataset(n_items, image_size, "ultrasound"), root)
        what = f"{n_items} synthetic ultrasound images, {image_size} px PNG"
    else:
        folder = source.expanduser() / "busi"
        images, masks = scan_layout(folder)
        classes = read_info(folder).get("classes") or {}
        names = [n for n in list_names(folder) if classes.get(n) not in EXCLUDED_CLASSES]
        if len(names) < n_items:
            raise ValueError(
                f"{folder} has {len(names)} images with lesions; {n_items} are needed "
                f"({n_train} to train, {n_val} to validate, 1 to test): ask for fewer"
            )
        names = names[:n_items]
        for part, files in ((IMAGES, images), (MASKS, masks)):
            (root / part).mkdir(parents=True, exist_ok=True)
            for name in names:
                shutil.copyfile(files[name], root / part / files[name].name)
        write_info(root, {"dataset": "busi", "classes": {n: classes.get(n) for n in names}})
        what = f"the first {n_items} images with a lesion of {folder}"
    settings = {
        "dataset": "busi",
        "data_dir": str(data_dir),
        "split": "random",
        "val_fraction": n_val / n_items,
        "test_fraction": 1 / n_items,
        "image_size": image_size,
    }
    return settings, what


def check_data(args) -> None:
    """Fail early, in one line, when ``--data`` holds no prepared ``busi/``."""
    if args.data is not None:
        try:
            list_names(args.data.expanduser() / "busi")
        except FileNotFoundError as error:
            raise SystemExit(  # the message names the folder and the command that prepares it
                f"bench.py: --data {args.data}: {error_line(error)} (add --source PATH to "
                "prepare an unpacked Dataset_BUSI_with_GT)"
            ) from None


def summarize(train_rows: list, predict_rows: list, decoder_alone: dict) -> dict:
    summary: dict = {}
    b12 = [r for r in train_rows if r["batch"] == 12 and "step_s" in r]
    ratios = [r["floor_ratio"] for r in b12 if r["floor_ratio"] is not None]
    if ratios:
        summary["train_floor_ratio_b12"] = min(ratios)
    if b12:
        summary["train_peak_mb_b12"] = {r["variant"]: r["peak_mb"] for r in b12}
        summary["train_floor_ratio_b12_fp32"] = next(
            (r["floor_ratio"] for r in b12 if r["variant"] == "fp32"), None
        )
    by = {(r["batch"], r["variant"]): r for r in train_rows if "step_s" in r}
    speedups = {
        b: by[(b, "fast")]["images_per_s"] / by[(b, "fp32")]["images_per_s"]
        for b, v in by
        if v == "fast" and (b, "fp32") in by
    }
    if speedups:
        summary["fast_over_fp32_speedup"] = speedups
    b1 = [r for r in predict_rows if r["batch"] == 1 and "ms_per_image" in r]
    if b1:
        summary["predict_ms_b1"] = min(r["ms_per_image"] for r in b1)
        if decoder_alone.get(1):
            summary["predict_decoder_ratio_b1"] = summary["predict_ms_b1"] / decoder_alone[1]
    return summary


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    check_data(args)
    batch_sizes = args.batch_sizes or (
        [1, 4, 12, 32, 64, 128, 256] if device.type == "cuda" else [1, 4, 12, 32]
    )
    args.variants = args.variants or (
        ["fp32", "fast", "lowmem"] if device.type == "cuda" else ["fp32", "fast"]
    )
    for name in args.variants:
        if not runs_on(VARIANTS[name], device):
            raise SystemExit(f"bench.py: --variants {name} does not run on {device}; drop it.")
    started = time.perf_counter()
    info = machine_info(device)
    print(json.dumps({k: v for k, v in info.items() if k != "versions"}), file=sys.stderr)
    base = load_base(args, device)

    train_rows = bench_training(args, base, device, batch_sizes)
    # Next, while the kernels chosen for batch 12 are still cached, as they are in training.
    loop = bench_loop(args, base, device, train_rows) if args.loop_images else None
    predict_rows, decoder_alone = bench_predict(args, base, device)
    # Cheap (one forward at batch 2) and device-independent. Not for gradient checkpointing:
    # what it saves is recomputed in the backward pass, so the peak is not what it keeps.
    activations = {
        name: saved_activation_mb(base, variant, device, args.image_size)
        for name, variant in VARIANTS.items()
        if not variant.gradient_checkpointing and runs_on(variant, device)
    }
    for name, mb in activations.items():
        print(f"saved activations per training image ({name}): {mb:.0f} MB")
    max_batch = None
    if device.type == "cuda" and args.memory_caps_gb:
        print(f"memory rule: {MEMORY_RULE}")
        budgets = {cap: card_budget_mb(cap) for cap in args.memory_caps_gb}
        max_batch = find_max_batches(args, base, device, budgets, args.variants)
    results = {
        "machine": info,
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "train": train_rows,
        "loop": loop,
        "loop_efficiency": (loop or {}).get("loop_efficiency"),
        "predict": predict_rows,
        "decoder_alone_ms_per_image": decoder_alone,
        "saved_activation_mb_per_image": activations,
        "memory_rule": MEMORY_RULE if max_batch else None,
        "max_batch": max_batch,
        **summarize(train_rows, predict_rows, decoder_alone),
        "wall_s": time.perf_counter() - started,
    }
    print(format_table(results))
    if args.out:
        write_json(results, args.out)
        print(f"results written to {args.out}")
    return 0


def resolve_device(name: str) -> torch.device:
    """:func:`get_device`, with a GPU's index made explicit: ``torch.device("cuda")`` has none,
    and ``torch.cuda.set_per_process_memory_fraction`` refuses such a device."""
    device = get_device(name)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())
    return device


def load_base(args, device: torch.device) -> WaveGMS:
    """The seeded model every measurement copies (TAESD from ``args.taesd``), on ``device``;
    with cuDNN's benchmark mode on a GPU, as training has it (fixed sizes: fastest kernels)."""
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    torch.manual_seed(0)
    return WaveGMS(load_tiny_vae(args.taesd), image_size=args.image_size).to(device)


def write_json(results: dict, path: Path) -> None:
    """``results`` as JSON at ``path``, atomically (a crash leaves no half-written file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(results, indent=2))
    os.replace(tmp, path)


def format_table(results: dict) -> str:
    """A Markdown table of the training and inference rows (pasteable into the README)."""
    lines = [
        "| batch | variant | step (s) | img/s | frozen floor (s) | step / floor "
        "| peak memory (MB) |",
        "|---:|---|---:|---:|---:|---:|---:|",
    ]
    for r in results["train"]:
        if r.get("oom"):
            lines.append(f"| {r['batch']} | {r['variant']} | OOM | | | | |")
            continue
        lines.append(
            f"| {r['batch']} | {r['variant']} ({r['dtype']}) | {r['step_s']:.3f} | "
            f"{r['images_per_s']:.1f} | {_number(r['floor_s'], '.3f')} | "
            f"{_number(r['floor_ratio'], '.2f')} | {_number(r['peak_mb'], '.0f')} |"
        )
    lines += [
        "",
        "| predict batch | variant | ms / image | img/s | TAESD decoder alone (ms / image) |",
        "|---:|---|---:|---:|---:|",
    ]
    for r in results["predict"]:
        if r.get("oom"):
            lines.append(f"| {r['batch']} | {r['variant']} | OOM | | |")
            continue
        lines.append(
            f"| {r['batch']} | {r['variant']} | {r['ms_per_image']:.1f} | "
            f"{r['images_per_s']:.1f} | {_number(r['decoder_alone_ms_per_image'], '.1f')} |"
        )
    if results.get("max_batch"):
        lines += [
            "",
            "| card | variant | largest training batch |",
            "|---:|---|---:|",
        ]
        for r in results["max_batch"]:
            found = "(the GPU has less memory)" if r["batch"] is None else r["batch"]
            card = f"{r['cap_gb']:g} GB ({r['budget_mb'] / 1024:.2f} GiB)"
            lines.append(f"| {card} | {r['variant']} ({r['dtype']}) | {found} |")
        lines.append(f"\nmemory rule: {results.get('memory_rule') or MEMORY_RULE}")
    loop = results.get("loop")
    if loop and not loop.get("oom"):
        last = loop["epochs"][-1]
        lines.append(
            f"\nloop_efficiency: {loop['loop_efficiency']:.3f} (epoch {last['epoch']}: "
            f"{loop['steps']} x {loop['step_s']:.3f} s isolated steps / {last['train_time_s']:.2f} "
            f"s of training; validation {_number(last['val_time_s'], '.2f')} s)"
        )
    for key in ("train_floor_ratio_b12", "predict_ms_b1", "predict_decoder_ratio_b1"):
        if key in results:
            lines.append(f"\n{key}: {results[key]:.3f}")
    return "\n".join(lines)


def _number(value: float | None, spec: str) -> str:
    return "" if value is None else format(value, spec)


if __name__ == "__main__":
    sys.exit(main())
