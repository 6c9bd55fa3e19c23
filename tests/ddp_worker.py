"""A process of a 2-process gloo group, for :mod:`test_ddp` (kept light: spawned children import
only this module)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from wavegms.engine import distributed


def check_agreement(rank: int, port: int, out_dir: str) -> None:
    """Run ``check_ranks_agree`` on equal weights, then with rank 1's weights nudged; write the
    two verdicts to ``out_dir/rank<rank>.json``."""
    os.environ.update(
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE="2", RANK=str(rank),
        LOCAL_RANK=str(rank),
    )  # fmt: skip
    world, device = distributed.setup(torch.device("cpu"))
    try:
        torch.manual_seed(0)
        model = torch.nn.Linear(3, 2)
        verdicts = []
        for nudge in (False, True):
            if nudge and rank == 1:
                with torch.no_grad():
                    model.weight[0, 0] += 1e-4
            try:
                distributed.check_ranks_agree(model, world, device)
                verdicts.append("agree")
            except RuntimeError as error:
                verdicts.append(str(error))
        (Path(out_dir) / f"rank{rank}.json").write_text(json.dumps(verdicts))
    finally:
        distributed.cleanup(world)


def resume_recording_writes(rank: int, port: int, run_dir: str, out_dir: str) -> None:
    """Resume the run in ``run_dir`` as ``rank`` of 2 (gloo); write to ``out_dir/rank<rank>.json``
    the files this process moved into place in ``run_dir`` (every file and folder the package
    writes ends with an ``os.replace``)."""
    os.environ.update(
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE="2", RANK=str(rank),
        LOCAL_RANK=str(rank),
    )  # fmt: skip
    from wavegms.engine.train import train

    written, replace = [], os.replace

    def recording(src, dst, **kwargs):  # noqa: ANN001, ANN003, ANN202
        if Path(dst).resolve().is_relative_to(Path(run_dir).resolve()):
            written.append(str(Path(dst).relative_to(run_dir)))
        return replace(src, dst, **kwargs)

    os.replace = recording
    try:
        train(None, run_dir, resume=True, progress=False)
    finally:
        os.replace = replace
        (Path(out_dir) / f"rank{rank}.json").write_text(json.dumps(written))
