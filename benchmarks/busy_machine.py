"""Training on a busy CPU: the quick preset alone, then beside 1 and 2 busy processes.

    python benchmarks/busy_machine.py --out busy.json
    python benchmarks/busy_machine.py --code before=/path/to/old/checkout --code after=.

A student's laptop runs a browser, a lab server runs other jobs: torch's threads wait for each
other behind that work. For each checkout of wavegms given with ``--code`` (default: this one)
this times the quick preset's training (``train()`` only, in a fresh process) alone and beside
``--busy`` processes that spin (``while True: pass``), started a second before, and prints the
times and their ratio to the time alone. Run it on an otherwise quiet machine: anything else
running changes every figure.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# Runs in the child, with the checkout to time first on its path; prints the seconds of train().
CHILD = """
import json, sys, tempfile, time
from wavegms.engine.config import preset
from wavegms.engine.train import train
config = preset("quick", device="cpu", epochs=int(sys.argv[1]))
with tempfile.TemporaryDirectory() as out:
    started = time.perf_counter()
    train(config, out + "/run", progress=False)
    print(json.dumps({"seconds": time.perf_counter() - started}))
"""


def time_training(code: Path, epochs: int, busy: int) -> float:
    """Seconds of the quick preset's training with ``code`` on the path, beside ``busy``
    spinning processes."""
    spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(busy)]
    try:
        time.sleep(1.0 if busy else 0.0)  # running before training starts, as a browser is
        env = {**os.environ, "PYTHONPATH": str(code.resolve())}
        for name in ("OMP_NUM_THREADS", "WAVEGMS_THREADS"):  # the code's own choice is timed
            env.pop(name, None)
        with tempfile.TemporaryDirectory() as cwd:
            done = subprocess.run(
                [sys.executable, "-c", CHILD, str(epochs)],
                env=env,
                cwd=cwd,
                capture_output=True,
                text=True,
                check=True,
            )
        return json.loads(done.stdout.strip().splitlines()[-1])["seconds"]
    finally:
        for spinner in spinners:
            spinner.kill()
            spinner.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--code",
        action="append",
        metavar="NAME=PATH",
        help="a checkout of wavegms to time (repeatable; default: this one, as 'this')",
    )
    parser.add_argument("--busy", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=2, help="quick-preset epochs per run")
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    args = parser.parse_args(argv)
    repo = Path(__file__).resolve().parent.parent
    codes = dict(item.split("=", 1) for item in args.code or [f"this={repo}"])
    results = {"machine_cores": os.cpu_count(), "epochs": args.epochs, "runs": []}
    print(f"{'code':<10} {'busy':>4} {'seconds':>8} {'x alone':>8}")
    for name, path in codes.items():
        alone = None
        for busy in args.busy:
            seconds = time_training(Path(path), args.epochs, busy)
            alone = seconds if busy == 0 else alone
            ratio = seconds / alone if alone else None
            results["runs"].append(
                {"code": name, "busy": busy, "seconds": seconds, "ratio_to_alone": ratio}
            )
            shown = f"{ratio:.2f}" if ratio else "-"
            print(f"{name:<10} {busy:>4} {seconds:>8.1f} {shown:>8}", flush=True)
    if args.out:
        args.out.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
