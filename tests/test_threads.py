"""The CPU thread and loader-worker choice (wavegms.utils.threads) and where it is applied."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
import torch

from wavegms.cli import build_parser
from wavegms.engine.config import RESUMABLE, TrainConfig, preset
from wavegms.engine.run_data import training_loader, workers
from wavegms.utils import threads
from wavegms.utils.threads import THREADS_ENV, choose_threads, configure_threads


@pytest.fixture
def no_forcing(monkeypatch):
    """No thread count forced by the environment (the test suite itself sets OMP_NUM_THREADS)."""
    monkeypatch.delenv(THREADS_ENV, raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    threads._recent.clear()
    threads._announced.clear()
    yield
    threads._recent.clear()


@pytest.mark.parametrize(
    ("cores", "busy", "expected"),
    [(2, 0.0, 2), (2, 0.3, 2), (2, 1.0, 1), (2, 1.7, 1), (2, 6.0, 1), (8, 3.0, 5), (1, 0.0, 1)],
)
def test_auto_leaves_the_busy_cores_to_the_work_that_keeps_them(no_forcing, cores, busy, expected):
    choice = choose_threads(cores=cores, busy=busy)
    assert (choice.threads, choice.source) == (expected, "auto")


def test_a_forced_count_wins_in_order_argument_env_omp(no_forcing, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert choose_threads(cores=2, busy=0.0).threads == 3  # the user's OpenMP setting holds
    monkeypatch.setenv(THREADS_ENV, "5")
    assert choose_threads(cores=2, busy=0.0).source == THREADS_ENV
    forced = choose_threads(4, cores=2, busy=0.0)
    assert (forced.threads, forced.source) == (4, "threads")
    assert forced.line() == "CPU threads: 4 threads (set by --threads / THREADS)"
    by_env = choose_threads(cores=2, busy=0.0).line()
    assert by_env == f"CPU threads: 5 threads (set by {THREADS_ENV})"


@pytest.mark.parametrize("value", ["0", "-1", "two", "1.5"])
def test_an_invalid_forced_count_is_named_with_its_source(no_forcing, monkeypatch, value):
    monkeypatch.setenv(THREADS_ENV, value)
    with pytest.raises(ValueError, match=rf"Invalid {THREADS_ENV}='{value}'.*at least 1"):
        choose_threads(cores=2, busy=0.0)


def test_the_line_says_what_was_chosen_why_and_how_to_change_it(no_forcing):
    line = choose_threads(cores=2, busy=1.04).line()
    assert line == (
        "CPU threads: 1 thread (2 cores, 1.0 busy with other work; to change: --threads N or "
        "WAVEGMS_THREADS=N)"
    )


def test_an_idle_machine_is_said_so(no_forcing):
    assert "(2 cores, idle;" in choose_threads(cores=2, busy=0.01).line()


def test_a_busy_process_is_seen_and_the_own_process_is_not(no_forcing):
    idle = threads.busy_cores(0.5)
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.5)
        busy = threads.busy_cores(0.5)
    finally:
        spinner.kill()
        spinner.wait()
    if idle is None or busy is None:
        pytest.skip("no /proc/stat and no load average on this system")
    assert busy >= 0.6, (idle, busy)
    # Spinning in this process while sampling is not "other work".
    started = time.process_time()
    while time.process_time() - started < 0.05:
        pass
    own = threads.busy_cores(0.3)
    assert own is not None and own < busy


def test_without_proc_stat_the_load_average_leaves_out_this_process(monkeypatch):
    monkeypatch.setattr(threads, "_cpu_times", lambda cpus: None)
    monkeypatch.setattr(threads.os, "getloadavg", lambda: (3.0, 3.0, 3.0))
    # Since the last look this process computed 2 s of CPU a second: its two threads' load.
    now = time.monotonic(), time.process_time()
    monkeypatch.setattr(threads, "_own_since", [now[0] - 10.0, now[1] - 20.0])
    assert threads.busy_cores(0.01) == pytest.approx(1.0, abs=0.05)
    threads._own_since[:] = [now[0] - 10.0, now[1] - 40.0]
    assert threads.busy_cores(0.01) == 0.0  # never below nothing
    # Each call measures from the previous one: an idle stretch does not dilute the next.
    threads._own_since[0] -= 3600.0
    threads.busy_cores(0.01)
    threads._own_since[:] = [time.monotonic() - 10.0, time.process_time() - 20.0]
    assert threads.busy_cores(0.01) == pytest.approx(1.0, abs=0.05)


def test_configure_applies_the_choice_and_says_it_once(no_forcing, capsys, monkeypatch):
    before = torch.get_num_threads()
    monkeypatch.setattr(threads, "busy_cores", lambda seconds=0: 0.0)
    monkeypatch.setattr(threads, "usable_cores", lambda: 1)
    try:
        choice = configure_threads()
        assert torch.get_num_threads() == choice.threads == 1
        configure_threads()  # reused, not said again
        assert capsys.readouterr().out.count("CPU threads: 1 thread (1 core,") == 1
        configure_threads(2)
        assert torch.get_num_threads() == 2
        assert capsys.readouterr().out == "CPU threads: 2 threads (set by --threads / THREADS)\n"
    finally:
        torch.set_num_threads(before)


def test_loader_workers_only_run_beside_a_gpu(monkeypatch):
    monkeypatch.setattr(threads, "usable_cores", lambda: 8)
    auto = preset("quick", num_workers=None)
    assert workers(auto, torch.device("cpu")) == 0
    assert workers(auto, torch.device("cuda", 0)) == threads.MAX_GPU_WORKERS
    monkeypatch.setattr(threads, "usable_cores", lambda: 2)
    assert workers(auto, torch.device("cuda", 0)) == 1
    assert workers(auto.replace(num_workers=3), torch.device("cpu")) == 3  # asked for: kept


def test_the_training_loader_of_a_cpu_run_starts_no_worker():
    from wavegms.data.synthetic import make_synthetic_datasets
    from wavegms.engine.distributed import World

    dataset = make_synthetic_datasets(4, 1, 1, image_size=32, seed=0)["train"]
    config = preset("busi", data_dir="unused", device="cpu")
    assert config.num_workers is None  # the paper presets leave it to the machine
    loader, _, _ = training_loader(dataset, config, World(), torch.device("cpu"))
    assert loader.num_workers == 0


def test_threads_is_a_setting_a_flag_and_resumable():
    assert "threads" in RESUMABLE and "num_workers" in RESUMABLE
    with pytest.raises(ValueError, match=r"Invalid threads=0: must be at least 1"):
        TrainConfig(threads=0)
    args = build_parser().parse_args(["train", "--out", "x", "--threads", "3"])
    assert args.threads == 3
    args = build_parser().parse_args(["predict", "--pretrained", "busi", "x.png", "--out", "o"])
    assert args.threads is None


def test_a_saved_run_keeps_an_optional_count_and_refuses_a_wrong_type(tmp_path):
    path = tmp_path / "train_config.json"
    preset("quick", threads=2).save(path)
    assert TrainConfig.load(path).threads == 2
    preset("quick").save(path)
    assert TrainConfig.load(path).threads is None
    path.write_text(path.read_text().replace('"threads": null', '"threads": "two"'))
    with pytest.raises(
        ValueError, match=r"threads='two' has the wrong type \(expected an integer or null\)"
    ):
        TrainConfig.load(path)
