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
* on a GPU, the largest training batch that fits under 12 GB and 16 GB of memory;
* the machine, library versions, and the median of ``--repeats`` runs after ``--warmup``.

Variants: ``fp32`` (the paper's setting), ``fast`` (mixed precision where the hardware runs it —
bf16 on recent CPUs and GPUs, fp16 on older GPUs — with channels-last memory format), ``lowmem``
(``fast`` plus gradient checkpointing of the TAESD decoder; training only, default on GPUs).
Every variant is checked for equivalence with fp32 by ``tests/test_fast_path.py``.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import torch

import wavegms
from wavegms.engine.train import optimisation_step
from wavegms.losses import WaveGMSLoss
from wavegms.model import WaveGMS
from wavegms.tiny_vae import load_tiny_vae
from wavegms.utils.device import autocast, get_device, resolve_precision


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
}


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
        "checkpointing; amp / fp32-cl: one of each (default: fp32 fast; on GPU also lowmem)",
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
        help="GPU only: find the largest batch that fits under each cap",
    )
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    args = parser.parse_args(argv)
    if args.image_size % 8:
        parser.error(f"--image-size must be a multiple of 8, got {args.image_size}")
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
    """
    started = time.perf_counter()
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    synchronize(device)
    times: dict[str, list[float]] = {name: [] for name in fns}
    rounds = 0
    while rounds < repeats and (not rounds or time.perf_counter() - started < budget_s):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            synchronize(device)
            times[name].append(time.perf_counter() - start)
        rounds += 1
    return {name: (statistics.median(t), t) for name, t in times.items()}


class PeakMemory:
    """Peak memory of the block in MB: CUDA max allocated, or the process's peak RSS on CPU."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.mb: float | None = None

    def __enter__(self) -> PeakMemory:
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(self.device)
        else:
            _reset_peak_rss()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.device.type == "cuda":
            self.mb = torch.cuda.max_memory_allocated(self.device) / 2**20
        else:
            self.mb = _peak_rss_mb()


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
        fp16 = self.dtype == torch.float16
        self.scaler = torch.amp.GradScaler(device.type) if fp16 else None

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
            round(torch.cuda.get_device_properties(device).total_memory / 2**30, 1)
            if device.type == "cuda"
            else None
        ),
        "platform": platform.platform(),
        "python": platform.python_version(),
    }
    versions = {"wavegms": wavegms.__version__, "torch": torch.__version__}
    for name in ("diffusers", "ptwt", "PyWavelets", "monai", "numpy"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    info["versions"] = versions
    return info


def is_oom(error: BaseException) -> bool:
    return isinstance(error, torch.OutOfMemoryError) or "out of memory" in str(error).lower()


def bench_training(args, base: WaveGMS, device: torch.device, batch_sizes: list[int]) -> list:
    """Per batch size: the frozen floor and a step of every variant, timed in turns.

    The warm-up run of each contender is also its peak-memory measurement.
    """
    rows = []
    floor_model = copy.deepcopy(base).to(device)
    for batch in batch_sizes:
        images, masks = make_batch(batch, args.image_size, device)
        contenders, peak_mb = {}, {}
        contenders["floor"] = lambda m=floor_model, x=images, y=masks: frozen_floor(m, x, y)
        for name in args.variants:
            # A deep copy has its own TAESD: one contender's memory format leaves the others'.
            step = TrainStep(copy.deepcopy(base), VARIANTS[name], device)
            contenders[name] = lambda s=step, x=images, y=masks: s(x, y)
        for name, fn in list(contenders.items()):
            try:
                with PeakMemory(device) as mem:
                    for _ in range(max(args.warmup, 1)):
                        fn()
                    synchronize(device)
                peak_mb[name] = mem.mb
            except RuntimeError as error:
                if not (device.type == "cuda" and is_oom(error)):
                    raise
                del contenders[name]
                print(f"batch {batch:4d}  {name:8s} out of memory")
            finally:
                if device.type == "cuda":
                    torch.cuda.empty_cache()
        if "floor" not in contenders:
            print(f"batch {batch}: out of memory for the floor; stopping here")
            break
        medians = median_seconds(contenders, device, args.repeats, 0, args.time_budget)
        floor_s, floor_times = medians.pop("floor")
        print(f"batch {batch:4d}  frozen floor (fp32)   {floor_s:8.3f} s")
        for name in args.variants:
            row = {
                "batch": batch,
                "variant": name,
                "floor_s": floor_s,
                "floor_times_s": floor_times,
                "floor_peak_mb": peak_mb["floor"],
            }
            if name not in medians:
                rows.append({**row, "oom": True})
                continue
            seconds, times = medians[name]
            row.update(
                step_s=seconds,
                times_s=times,
                images_per_s=batch / seconds,
                floor_ratio=seconds / floor_s,
                peak_mb=peak_mb[name],
                dtype=dtype_name(VARIANTS[name], device),
            )
            rows.append(row)
            print(
                f"batch {batch:4d}  {name:8s} step {seconds:8.3f} s  "
                f"{batch / seconds:8.1f} img/s  floor x{seconds / floor_s:5.2f}  "
                f"peak {peak_mb[name] or float('nan'):8.0f} MB"
            )
        contenders = None
        if device.type == "cuda":
            torch.cuda.empty_cache()
        if len(medians) == 0:
            break
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
        decoder_alone[batch] = 1000 * medians.pop("decoder")[0] / batch
        print(
            f"predict batch {batch:3d}  TAESD decoder alone (fp32) "
            f"{decoder_alone[batch]:7.1f} ms/img"
        )
        for name, (seconds, times) in medians.items():
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
            print(
                f"predict batch {batch:3d}  {name:8s} {ms:7.1f} ms/img  "
                f"{batch / seconds:7.1f} img/s"
                f"  decoder-alone x{ms / decoder_alone[batch]:4.2f}"
            )
    return rows, decoder_alone


def largest_batch(
    args, base: WaveGMS, device: torch.device, cap_gb: float, name: str
) -> int | None:
    """Largest training batch whose step fits under ``cap_gb`` of GPU memory (binary search).

    0 when not even batch 1 fits; None when the GPU has less than ``cap_gb``.
    """
    total = torch.cuda.get_device_properties(device).total_memory
    if cap_gb * 2**30 > total:
        return None
    torch.cuda.set_per_process_memory_fraction(cap_gb * 2**30 / total, device)

    def fits(batch: int) -> bool:
        step = None
        try:
            images, masks = make_batch(batch, args.image_size, device)
            step = TrainStep(copy.deepcopy(base), VARIANTS[name], device)
            step(images, masks)
            step(images, masks)
            synchronize(device)
            return True
        except RuntimeError as error:
            if is_oom(error):
                return False
            raise
        finally:
            del step
            torch.cuda.empty_cache()

    try:
        return largest_fitting(fits) or 0
    finally:
        torch.cuda.set_per_process_memory_fraction(1.0, device)


def largest_fitting(fits: Callable[[int], bool], limit: int = 4096) -> int | None:
    """The largest batch ``b <= limit`` with ``fits(b)``, assuming every smaller batch fits too.

    Doubles from 1 until a batch fails, then bisects: about 2 log2(b) trials. None if 1 fails.
    """
    low, high = 0, 1
    while high <= limit and fits(high):
        low, high = high, high * 2
    high = min(high, limit + 1)
    while high - low > 1:
        mid = (low + high) // 2
        low, high = (mid, high) if fits(mid) else (low, mid)
    return low or None


def summarize(train_rows: list, predict_rows: list, decoder_alone: dict) -> dict:
    summary: dict = {}
    b12 = [r for r in train_rows if r["batch"] == 12 and "step_s" in r]
    if b12:
        summary["train_floor_ratio_b12"] = min(r["floor_ratio"] for r in b12)
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
    b1 = [r for r in predict_rows if r["batch"] == 1]
    if b1:
        summary["predict_ms_b1"] = min(r["ms_per_image"] for r in b1)
        summary["predict_decoder_ratio_b1"] = summary["predict_ms_b1"] / decoder_alone[1]
    return summary


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = get_device(args.device)
    batch_sizes = args.batch_sizes or (
        [1, 4, 12, 32, 64, 128, 256] if device.type == "cuda" else [1, 4, 12, 32]
    )
    args.variants = args.variants or (
        ["fp32", "fast", "lowmem"] if device.type == "cuda" else ["fp32", "fast"]
    )
    started = time.perf_counter()
    info = machine_info(device)
    print(json.dumps({k: v for k, v in info.items() if k != "versions"}), file=sys.stderr)
    torch.manual_seed(0)
    base = WaveGMS(load_tiny_vae(args.taesd), image_size=args.image_size).to(device)

    train_rows = bench_training(args, base, device, batch_sizes)
    predict_rows, decoder_alone = bench_predict(args, base, device)
    # Cheap (one forward at batch 2) and device-independent. Not for gradient checkpointing:
    # what it saves is recomputed in the backward pass, so the peak is not what it keeps.
    activations = {
        name: saved_activation_mb(base, variant, device, args.image_size)
        for name, variant in VARIANTS.items()
        if not variant.gradient_checkpointing
    }
    for name, mb in activations.items():
        print(f"saved activations per training image ({name}): {mb:.0f} MB")
    max_batch = []
    if device.type == "cuda":
        for cap in args.memory_caps_gb:
            for name in args.variants:
                found = largest_batch(args, base, device, cap, name)
                dtype = dtype_name(VARIANTS[name], device)
                max_batch.append({"cap_gb": cap, "variant": name, "dtype": dtype, "batch": found})
                print(f"largest batch under {cap:g} GB ({name}, {dtype}): {found}")
    results = {
        "machine": info,
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "train": train_rows,
        "predict": predict_rows,
        "decoder_alone_ms_per_image": decoder_alone,
        "saved_activation_mb_per_image": activations,
        "max_batch": max_batch or None,
        **summarize(train_rows, predict_rows, decoder_alone),
        "wall_s": time.perf_counter() - started,
    }
    print(format_table(results))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        tmp = args.out.with_name(f".{args.out.name}.tmp")
        tmp.write_text(json.dumps(results, indent=2))
        os.replace(tmp, args.out)
        print(f"results written to {args.out}")
    return 0


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
            f"{r['images_per_s']:.1f} | {r['floor_s']:.3f} | {r['floor_ratio']:.2f} | "
            f"{r['peak_mb'] or float('nan'):.0f} |"
        )
    lines += [
        "",
        "| predict batch | variant | ms / image | img/s | TAESD decoder alone (ms / image) |",
        "|---:|---|---:|---:|---:|",
    ]
    for r in results["predict"]:
        lines.append(
            f"| {r['batch']} | {r['variant']} | {r['ms_per_image']:.1f} | "
            f"{r['images_per_s']:.1f} | {r['decoder_alone_ms_per_image']:.1f} |"
        )
    if results.get("max_batch"):
        lines += [
            "",
            "| GPU memory cap | variant | largest training batch |",
            "|---:|---|---:|",
        ]
        for r in results["max_batch"]:
            found = "(the GPU has less memory)" if r["batch"] is None else r["batch"]
            lines.append(f"| {r['cap_gb']:g} GB | {r['variant']} ({r['dtype']}) | {found} |")
    for key in ("train_floor_ratio_b12", "predict_ms_b1", "predict_decoder_ratio_b1"):
        if key in results:
            lines.append(f"\n{key}: {results[key]:.3f}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
