"""Prove the GPU path in one command: every check a GPU run needs, as one table.

    python benchmarks/gpu_check.py --out gpu_check.json     # on one GPU: under 8 minutes
    python benchmarks/gpu_check.py --smoke --out smoke.json  # a CPU dry run of the same code

Prints one Markdown table (and writes it as JSON with ``--out``), a row per check:

* the GPU, its compute capability, and the precision ``auto`` picks there
  (:func:`wavegms.utils.device.resolve_precision`: bf16 from compute capability 8.0, else fp16
  with a gradient scaler);
* a training step at batch 12 in fp32, in ``auto`` (with channels-last) and in fp16 with its
  GradScaler: step time, peak allocated memory and the process's peak as nvidia-smi counts it
  (the allocator's reserved memory plus the CUDA context);
* the largest training batch that fits a 12 GB and a 16 GB card (``bench.MEMORY_RULE``) for
  ``fp32``, ``fast`` (``auto`` + channels-last) and ``lowmem`` (``fast`` + gradient
  checkpointing), found by a search that survives out-of-memory errors;
* ``wavegms train`` as a user runs it, in subprocesses (the command line, the loaders with PNG
  decoding, checkpoints, ``--resume``): one epoch of the ``quick`` preset and one of 48
  BUSI-like 224 px images at batch 12 on the fast path, each resumed to a second epoch, which
  the run's log must show;
* ``predict`` in ms per image at batch 1 and 16;
* a 2-process data-parallel run (torchrun) where two GPUs exist, else a row saying why not.

Every measurement is a function of ``benchmarks/bench.py``; this script picks the sizes and
checks the outcomes. ``--smoke`` runs on the CPU at tiny sizes (32 px, batch 2, a 1/8 GiB
budget of added RSS for the batch search) so that a test can run every code path here in about
a minute; its figures mean nothing. Exit status: 0 every check passed or was skipped, 1 one
failed, 2 no GPU (without ``--smoke``).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import bench  # benchmarks/bench.py, beside this script: its measurements
import torch

from wavegms.cli import config_flags
from wavegms.utils.device import resolve_precision
from wavegms.utils.errors import error_line

REPO = Path(__file__).resolve().parents[1]
PYTHONPATH = os.environ.get("PYTHONPATH")  # the subprocesses run this checkout's wavegms first

# What each run measures; --smoke keeps the code paths and shrinks the work.
FULL = {
    "image_size": 224,
    "batch": 12,
    "repeats": 3,
    "warmup": 1,
    "time_budget": 60.0,
    "caps": [12.0, 16.0],  # card sizes in GB (bench.card_budget_mb)
    "cap_variants": ["fp32", "fast", "lowmem"],
    "predict_batch_sizes": [1, 16],
    "quick_flags": [],
    "busi_images": (48, 12),  # to train, to validate
    "timeout_s": 300,
}
SMOKE = {
    **FULL,
    "image_size": 32,
    "batch": 2,
    "repeats": 1,
    "time_budget": 20.0,
    "caps": [0.125],  # GiB of RSS a CPU step adds (bench.largest_batch)
    "cap_variants": ["fp32", "fast"],
    "predict_batch_sizes": [1, 2],
    "quick_flags": ["--image-size", "32", "--synthetic-sizes", "8", "2", "2"],
    "busi_images": (8, 4),
    "timeout_s": 120,
}
STEP_VARIANTS = {"fp32": "fp32", "auto": "fast", "fp16 + GradScaler": "fp16"}  # row -> variant
AUTO_RULE = "bf16 on compute capability >= 8.0, else fp16 with a GradScaler (T4: sm_75)"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--smoke", action="store_true", help="a CPU dry run at tiny sizes")
    parser.add_argument("--device", default="cuda", help="the GPU to check (cuda, cuda:1)")
    parser.add_argument("--taesd", default=None, help="TAESD hub id or folder")
    parser.add_argument(
        "--data",
        type=Path,
        default=None,
        metavar="DATA_DIR",
        help="train on real BUSI images: DATA_DIR holds a prepared busi/ (default: synthetic)",
    )
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    return parser.parse_args(argv)


def row(check: str, status: str, result: str, details: str = "", **data: object) -> dict:
    """One line of the table: ``status`` is ok, failed or skipped."""
    return {"check": check, "status": status, "result": result, "details": details, **data}


# ---- the checks ----------------------------------------------------------------------------------


def check_device(device: torch.device, info: dict) -> list[dict]:
    if device.type != "cuda":
        return [row("device", "ok", f"CPU: {info['cpu']} (smoke run, no GPU)")]
    return [
        row(
            "device",
            "ok",
            f"{info['gpu']}, compute capability {info['gpu_capability']}",
            f"{info['gpu_memory_gb']:.2f} GiB; torch {torch.__version__}, CUDA "
            f"{torch.version.cuda}, cuDNN {info['versions']['cudnn']}",
            capability=info["gpu_capability"],
        )
    ]


def check_precision(device: torch.device) -> list[dict]:
    dtype = resolve_precision("auto", device)
    name = {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[dtype]
    rule = AUTO_RULE if device.type == "cuda" else "CPU: bf16 where the processor runs it natively"
    return [row("precision auto", "ok", name, rule, dtype=name)]


def check_steps(args, base, device: torch.device) -> list[dict]:
    """A training step per precision, timed in turns (:func:`bench.bench_training`)."""
    names = {
        label: v for label, v in STEP_VARIANTS.items() if bench.runs_on(bench.VARIANTS[v], device)
    }
    args.variants = list(names.values())
    measured = {r["variant"]: r for r in bench.bench_training(args, base, device, [args.batch])}
    rows = []
    for label, variant in STEP_VARIANTS.items():
        check = f"train step {label}"
        if label not in names:
            rows.append(row(check, "skipped", f"{variant} autocast runs on GPUs only"))
            continue
        r = measured.get(variant, {"oom": True})
        if r.get("oom"):
            rows.append(row(check, "failed", f"out of memory at batch {args.batch}"))
            continue
        if device.type == "cuda":
            memory = (
                f"peak allocated {_gib(r['peak_mb'])}, in all {_gib(r['process_peak_mb'])} "
                "(reserved + CUDA context)"
            )
        else:
            memory = f"peak RSS {_gib(r['peak_mb'])}"
        layout = "channels-last" if bench.VARIANTS[variant].channels_last else "contiguous"
        rows.append(
            row(
                check,
                "ok",
                f"{r['step_s']:.3f} s/step, {r['images_per_s']:.1f} img/s (batch {args.batch})",
                f"{r['dtype']}, {layout}; {memory}",
                **{k: r[k] for k in ("dtype", "step_s", "peak_mb", "process_peak_mb")},
            )
        )
    return rows


def check_max_batches(args, base, device: torch.device) -> list[dict]:
    """:func:`bench.find_max_batches`: what fits each card (on a CPU, each RSS budget)."""
    budget = bench.card_budget_mb if device.type == "cuda" else (lambda gib: gib * 1024)
    found = bench.find_max_batches(
        args, base, device, {cap: budget(cap) for cap in args.caps}, args.cap_variants
    )
    rows = []
    for cap in args.caps:
        mine = [r for r in found if r["cap_gb"] == cap]
        limit = _gib(budget(cap))
        if device.type == "cuda":
            check, details = f"largest batch, {cap:g} GB card", f"within {limit}, CUDA context in"
        else:
            check, details = f"largest batch, {limit} added RSS", "CPU stand-in for a card"
        if any(r["batch"] is None for r in mine):
            rows.append(row(check, "skipped", f"this GPU has less than {limit}", details))
            continue
        result = ", ".join(f"{r['variant']} ({r['dtype']}) {r['batch']}" for r in mine)
        status = "ok" if all(r["batch"] for r in mine) else "failed"  # 0: not even batch 1
        rows.append(row(check, status, result, details, batches=mine))
    return rows


def check_quick_cli(args, device: torch.device, tmp: Path) -> list[dict]:
    flags = ["--preset", "quick", *args.quick_flags]
    return [train_and_resume("wavegms train --preset quick", flags, args, device, tmp / "quick")]


def check_busi_cli(args, device: torch.device, tmp: Path) -> list[dict]:
    n_train, n_val = args.busi_images
    settings, what = bench.busi_like_data(tmp / "data", n_train, n_val, args.image_size, args.data)
    names = {name: flag for flag, (name, _) in config_flags().items()}
    flags = ["--preset", "busi", "--batch-size", str(args.batch)]
    for name, value in settings.items():
        if name != "dataset":  # the preset's
            flags += [names[name], str(value)]
    flags += ["--precision", "auto", "--channels-last"]  # the fast path
    check = f"wavegms train, {n_train} BUSI-like images"
    done = train_and_resume(check, flags, args, device, tmp / "busi")
    return [{**done, "details": f"{what}; {done['details']}"}]


def train_and_resume(check: str, flags: list[str], args, device, run_dir: Path) -> dict:
    """``wavegms train ... --epochs 1``, then ``--resume --epochs 2``: the log must show both."""
    common = ["--out", str(run_dir), "--device", str(device), "--no-progress"]
    common += ["--taesd", args.taesd] if args.taesd else []
    first = _wavegms(["train", *flags, *common, "--epochs", "1"], args.timeout_s)
    if first.returncode:
        return row(check, "failed", "the first epoch failed", _last_line(first))
    second = _wavegms(["train", *common, "--resume", "--epochs", "2"], args.timeout_s)
    if second.returncode:
        return row(check, "failed", "--resume failed", _last_line(second))
    log = [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]
    epochs = [r["epoch"] for r in log]
    resumed = "resuming from epoch 1" in second.stdout and "epoch 2/2" in second.stdout
    status = "ok" if epochs == [1, 2] and resumed else "failed"
    times = "; ".join(
        f"epoch {r['epoch']}: train {r['train_time_s']:.1f} s, validation {r['val_time_s']:.1f} s"
        for r in log
    )
    return row(
        check,
        status,
        f"1 epoch, then --resume to 2: the log shows epochs {epochs}",
        times,
        epochs=[{k: r.get(k) for k in ("epoch", "train_time_s", "val_time_s")} for r in log],
    )


def check_predict(args, base, device: torch.device) -> list[dict]:
    """:func:`bench.bench_predict`, fp32 and ``auto`` (the fast path), per batch size."""
    args.variants = ["fp32", "fast"]
    measured, decoder_alone = bench.bench_predict(args, base, device)
    rows = []
    for batch in args.predict_batch_sizes:
        mine = {r["variant"]: r for r in measured if r["batch"] == batch}
        check = f"predict, batch {batch}"
        if any(r.get("oom") for r in mine.values()):
            rows.append(row(check, "failed", "out of memory"))
            continue
        result = ", ".join(
            f"{'auto' if v == 'fast' else v} {r['ms_per_image']:.1f} ms/image"
            for v, r in mine.items()
        )
        alone = decoder_alone.get(batch)
        details = f"TAESD decoder alone (fp32) {alone:.1f} ms/image" if alone else ""
        rows.append(row(check, "ok", result, details, ms_per_image=mine))
    return rows


def check_ddp(args, device: torch.device, tmp: Path) -> list[dict]:
    check = "DDP, 2 processes"
    gpus = torch.cuda.device_count() if device.type == "cuda" else 0
    if gpus < 2:
        where = "a CPU smoke run" if device.type != "cuda" else f"{gpus} GPU here"
        return [row(check, "skipped", f"needs 2 GPUs ({where})")]
    run_dir = tmp / "ddp"
    command = ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    command += ["-m", "wavegms", "train", "--preset", "quick", "--epochs", "1", "--device", "cuda"]
    command += ["--out", str(run_dir), "--no-progress"]
    command += ["--taesd", args.taesd] if args.taesd else []
    done = _python(command, args.timeout_s)
    if done.returncode:
        return [row(check, "failed", "torchrun failed", _last_line(done))]
    log = (run_dir / "log.jsonl").read_text().splitlines()
    ok = "x 2 processes" in done.stdout and len(log) == 1
    said = done.stdout.strip().splitlines()[-1:]
    return [row(check, "ok" if ok else "failed", "1 epoch on 2 GPUs (NCCL)", " ".join(said))]


# ---- running them --------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not args.smoke and not torch.cuda.is_available():
        build = f"CUDA {torch.version.cuda}" if torch.version.cuda else "a CPU-only build"
        print(
            f"gpu_check.py: PyTorch sees no CUDA GPU (torch {torch.__version__}, {build}); run "
            "it on a GPU machine, or add --smoke for a CPU dry run of the same code paths.",
            file=sys.stderr,
        )
        return 2
    vars(args).update(SMOKE if args.smoke else FULL)
    device = bench.resolve_device("cpu" if args.smoke else args.device)
    started = time.perf_counter()
    info = bench.machine_info(device)
    try:
        base = bench.load_base(args, device)
    except (OSError, RuntimeError, ValueError) as error:  # e.g. no TAESD: says how to get it
        print(f"gpu_check.py: {error_line(error)}", file=sys.stderr)
        return 2
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="wavegms-gpu-check-") as tmp:
        checks: list[tuple[str, Callable[[], list[dict]]]] = [
            ("device", lambda: check_device(device, info)),
            ("precision auto", lambda: check_precision(device)),
            ("train steps", lambda: check_steps(args, base, device)),
            ("largest batch", lambda: check_max_batches(args, base, device)),
            ("wavegms train --preset quick", lambda: check_quick_cli(args, device, Path(tmp))),
            ("wavegms train, BUSI-like", lambda: check_busi_cli(args, device, Path(tmp))),
            ("predict", lambda: check_predict(args, base, device)),
            ("DDP, 2 processes", lambda: check_ddp(args, device, Path(tmp))),
        ]
        for name, check in checks:
            print(f"-- {name} (at {time.perf_counter() - started:.0f} s)", flush=True)
            try:
                rows += check()
            except Exception as error:  # one broken check must not hide the others' results
                rows.append(row(name, "failed", type(error).__name__, error_line(error)))
            bench.free_memory(device)
    results = {
        "machine": info,
        "smoke": args.smoke,
        "memory_rule": bench.MEMORY_RULE,
        "rows": rows,
        "wall_s": time.perf_counter() - started,
    }
    print(format_table(results))
    if args.out:
        bench.write_json(results, args.out)
        print(f"results written to {args.out}")
    return 1 if any(r["status"] == "failed" for r in rows) else 0


def format_table(results: dict) -> str:
    """The one Markdown table of the checks, then the memory rule and the wall time."""
    title = "smoke run on a CPU: tiny sizes, the figures mean nothing" if results["smoke"] else ""
    lines = [title, "| check | status | result | details |", "|---|---|---|---|"]
    for r in results["rows"]:
        cells = [r["check"], r["status"], r["result"], r["details"]]
        lines.append("| " + " | ".join(str(c).replace("|", "/") for c in cells) + " |")
    lines += [f"\nmemory rule: {results['memory_rule']}", f"wall time: {results['wall_s']:.0f} s"]
    return "\n".join(line for line in lines if line)


def _wavegms(arguments: list[str], timeout_s: float) -> subprocess.CompletedProcess:
    return _python(["-m", "wavegms", *arguments], timeout_s)


def _python(arguments: list[str], timeout_s: float) -> subprocess.CompletedProcess:
    """``python ARGUMENTS`` from the repository (this checkout's wavegms), output captured."""
    done = subprocess.run(
        [sys.executable, *arguments],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), PYTHONPATH]))},
        capture_output=True,
        text=True,
        timeout=timeout_s,
    )
    print(done.stdout, end="", flush=True)
    return done


def _last_line(done: subprocess.CompletedProcess) -> str:
    lines = (done.stderr.strip() or done.stdout.strip()).splitlines()
    return lines[-1] if lines else f"exit status {done.returncode}"


def _gib(mb: float | None) -> str:
    return "?" if mb is None or math.isnan(mb) else f"{mb / 1024:.2f} GiB"


if __name__ == "__main__":
    sys.exit(main())
