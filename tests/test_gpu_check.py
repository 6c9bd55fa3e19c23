"""``benchmarks/gpu_check.py``: its CPU smoke run goes through every check of the GPU run (tiny
sizes) and reports each in the table and the JSON; without a GPU or ``--smoke`` it says so."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import torch

from wavegms.utils.device import resolve_precision


def cpu_runs_fp16() -> bool:
    """Whether this torch trains in fp16 on a CPU (autocast and a CPU GradScaler; 2.13 does)."""
    try:
        return resolve_precision("fp16", torch.device("cpu")) == torch.float16
    except ValueError:
        return False


REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "benchmarks" / "gpu_check.py"
CHECKS = {  # the smoke run's rows, in order, and their status on a CPU
    "device": "ok",
    "precision auto": "ok",
    "train step fp32": "ok",
    "train step auto": "ok",
    "train step fp16 + GradScaler": "ok" if cpu_runs_fp16() else "skipped",
    "largest batch, 0.12 GiB added RSS": "ok",
    "wavegms train --preset quick": "ok",
    "wavegms train, 8 BUSI-like images": "ok",
    "predict, batch 1": "ok",
    "predict, batch 2": "ok",
    "DDP, 2 processes": "skipped",  # needs two GPUs
}


def run_script(*arguments: str, **env: str) -> subprocess.CompletedProcess:
    path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, str(SCRIPT), *arguments],
        env={**os.environ, "PYTHONPATH": path, **env},
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_the_smoke_run_reports_every_check(tmp_path):
    out = tmp_path / "check.json"
    done = run_script("--smoke", "--out", str(out))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    results = json.loads(out.read_text())
    assert results["smoke"] is True
    rows = {r["check"]: r for r in results["rows"]}
    assert {check: r["status"] for check, r in rows.items()} == CHECKS
    assert list(rows) == list(CHECKS)
    for check, status in CHECKS.items():  # the one printed table has the same rows
        assert f"| {check} | {status} | {rows[check]['result']} |" in done.stdout

    auto = {None: "fp32", torch.bfloat16: "bf16"}[resolve_precision("auto", torch.device("cpu"))]
    assert rows["precision auto"]["result"] == auto
    assert rows["train step fp32"]["dtype"] == "float32" and rows["train step fp32"]["step_s"] > 0
    assert rows["train step auto"]["dtype"] == {"fp32": "float32", "bf16": "bfloat16"}[auto]
    batches = rows["largest batch, 0.12 GiB added RSS"]["batches"]
    assert [r["variant"] for r in batches] == ["fp32", "fast"]
    assert all(r["batch"] >= 1 for r in batches)
    # The command line trained one epoch, then resumed to a second, in its own processes.
    for check in ("wavegms train --preset quick", "wavegms train, 8 BUSI-like images"):
        epochs = rows[check]["epochs"]
        assert [e["epoch"] for e in epochs] == [1, 2]
        assert all(e["train_time_s"] > 0 and e["val_time_s"] > 0 for e in epochs)
    assert done.stdout.count("resuming from epoch 1") == 2
    for batch in (1, 2):
        timings = rows[f"predict, batch {batch}"]["ms_per_image"]
        assert set(timings) == {"fp32", "fast"}
        assert all(t["ms_per_image"] > 0 for t in timings.values())


def test_without_a_gpu_it_asks_for_one_or_smoke_in_one_line():
    done = run_script(CUDA_VISIBLE_DEVICES="")  # no GPU, whatever this machine has
    assert done.returncode == 2 and done.stdout == ""
    assert len(done.stderr.strip().splitlines()) == 1
    assert "PyTorch sees no CUDA GPU" in done.stderr and "--smoke" in done.stderr
