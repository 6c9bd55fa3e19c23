"""One writer per run folder (``wavegms.utils.lock``): a claim holds ``run.lock`` for its
``with`` block and tidies up after itself; a second claim is refused naming the holder's
process; a lock file left by a killed run is taken over; ``wavegms train`` reports each of
these, and a full disk, in one line."""

from __future__ import annotations

import errno
import os
import re
import subprocess
import sys
import textwrap

import pytest

from wavegms.cli import main
from wavegms.engine.config import preset
from wavegms.engine.train import train
from wavegms.utils.lock import LOCK_NAME, FolderInUseError, claim_folder


def test_a_claim_holds_the_lock_and_leaves_no_trace(tmp_path):
    folder = tmp_path / "run"
    with claim_folder(folder) as held:
        assert held == folder
        assert (folder / LOCK_NAME).read_text() == f"{os.getpid()}\n"
    assert not folder.exists()  # created by the claim and left empty: removed with it


def test_a_folder_that_existed_or_was_written_to_stays(tmp_path):
    existing = tmp_path / "existing"
    existing.mkdir()
    with claim_folder(existing):
        pass
    assert existing.is_dir() and list(existing.iterdir()) == []
    new = tmp_path / "new"
    with claim_folder(new):
        (new / "log.jsonl").write_text("{}\n")
    assert [p.name for p in new.iterdir()] == ["log.jsonl"]


def test_a_second_claim_is_refused_naming_the_holder_and_takes_nothing(tmp_path):
    folder = tmp_path / "run"
    expected = (
        f"{folder} is in use by another training run (process {os.getpid()}, see "
        f"{folder / LOCK_NAME}): wait for it to finish, or choose another --out."
    )
    with claim_folder(folder):
        for _ in range(2):  # a refusal releases nothing: the next claim is refused too
            with pytest.raises(FolderInUseError, match=re.escape(expected)), claim_folder(folder):
                pytest.fail("one folder claimed twice")
        assert (folder / LOCK_NAME).read_text() == f"{os.getpid()}\n"
    assert not folder.exists()
    with claim_folder(folder):  # released: free again
        pass


def test_a_lock_file_left_by_a_killed_run_is_taken_over(tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / LOCK_NAME).write_text("4194304\n")  # a PID no process has: nobody holds the lock
    with claim_folder(folder):
        assert (folder / LOCK_NAME).read_text() == f"{os.getpid()}\n"
    assert list(folder.iterdir()) == []


def test_a_folder_held_by_a_live_run_is_refused_and_a_dead_runs_lock_is_taken_over(
    tiny_vae, tmp_path, capsys
):
    run_dir = tmp_path / "run"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(f"""
                import time
                from wavegms.utils.lock import claim_folder
                with claim_folder({str(run_dir)!r}):
                    print("held", flush=True)
                    time.sleep(600)
            """),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        in_use = f"{re.escape(str(run_dir))} is in use.*process {holder.pid}"
        with pytest.raises(FolderInUseError, match=in_use):
            train(preset("quick", device="cpu"), run_dir, progress=False, tiny_vae=tiny_vae)
        assert sorted(p.name for p in run_dir.iterdir()) == ["run.lock"]  # nothing written
        assert main(["train", "--out", str(run_dir), "--image-size", "32"]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "is in use by another training run" in err
    finally:
        holder.kill()  # like kill -9: its run.lock stays behind
        holder.wait()
    assert (run_dir / "run.lock").read_text().strip() == str(holder.pid)
    with claim_folder(run_dir):
        assert (run_dir / "run.lock").read_text().strip() == str(os.getpid())
    assert list(run_dir.iterdir()) == []  # the lock goes with the claim


def test_out_that_is_a_file_or_a_full_disk_is_one_line(tmp_path, capsys, monkeypatch):
    a_file = tmp_path / "file"
    a_file.write_text("x")
    assert main(["train", "--out", str(a_file), "--image-size", "32"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"{a_file} is a file" in err

    def full(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("wavegms.utils.lock.os.open", full)
    assert main(["train", "--out", str(tmp_path / "run"), "--image-size", "32"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "No space left on device" in err and "disk is full" in err
