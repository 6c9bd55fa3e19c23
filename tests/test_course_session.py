"""What the notebooks' opening gives their training runs (issue 20): the precision and memory
format of the parameters ``PRECISION`` and ``CHANNELS_LAST`` in the config a notebook builds,
and, with ``DRIVE_RUNS`` in Colab, a run folder on Google Drive that survives a disconnect. No
notebook is executed: the notebooks' own cells run against a faked GPU or a faked Colab."""

from __future__ import annotations

import ast
import sys
import types
from pathlib import Path

import nbformat
import pytest
import torch
from runs import export_synthetic

from wavegms import course
from wavegms.course import session as course_session
from wavegms.course.notebooks import PROFILES
from wavegms.data import SyntheticDataset
from wavegms.engine.checkpoint import LOG, TRAIN_CONFIG, TRAINING_STATE
from wavegms.engine.config import preset

NOTEBOOK_DIR = Path(__file__).resolve().parents[1] / "notebooks"
TRAINING_NOTEBOOKS = ("03_lmm_training", "04_evaluation", "05_inference_on_your_images")


def _cells(stem: str, tag: str | None = None) -> list[str]:
    notebook = nbformat.read(NOTEBOOK_DIR / f"{stem}.ipynb", as_version=4)
    return [
        cell.source
        for cell in notebook.cells
        if cell.cell_type == "code" and (tag is None or tag in cell.metadata.get("tags", []))
    ]


def _open(stem: str, values: dict) -> dict:
    """The namespace of notebook ``stem`` after its parameters cell, ``values`` injected as
    papermill injects them, and its start cell."""
    namespace: dict = {}
    (parameters,) = _cells(stem, "parameters")
    exec(parameters, namespace)
    namespace.update(values)
    (start,) = _cells(stem, "start")
    exec(start, namespace)
    return namespace


def _notebook_config(stem: str, namespace: dict):  # noqa: ANN202 - a TrainConfig
    """The config notebook ``stem`` builds: its own ``config = course.course_config(...)``
    statement, run in ``namespace``."""
    for source in _cells(stem):
        for node in ast.walk(ast.parse(source)):
            if (
                isinstance(node, ast.Assign)
                and isinstance(node.value, ast.Call)
                and ast.unparse(node.value.func) == "course.course_config"
            ):
                exec(compile(ast.Module([node], []), stem, "exec"), namespace)
                return namespace["config"]
    raise AssertionError(f"{stem} builds no config")


@pytest.fixture
def t4(monkeypatch):
    """The session sees a CUDA GPU below compute capability 8, as Colab's T4 (on any machine)."""
    monkeypatch.setattr(course_session, "get_device", lambda _: torch.device("cuda", 0))
    monkeypatch.setattr(
        course_session,
        "resolve_precision",
        lambda precision, _device: {"auto": torch.float16, "fp32": None}.get(precision),
    )


@pytest.fixture
def busi(tmp_path) -> Path:
    export_synthetic(SyntheticDataset(3, image_size=32), tmp_path / "data" / "busi")
    return tmp_path / "data"


def test_the_parameters_decide_precision_and_memory_format_per_device():
    cpu, cuda = torch.device("cpu"), torch.device("cuda", 0)
    assert course.training_format("auto", None, cpu) == ("fp32", False)
    assert course.training_format("auto", None, cuda) == ("auto", True)
    assert course.training_format("auto", None, torch.device("mps")) == ("fp32", False)
    assert course.training_format("bf16", True, cpu) == ("bf16", True)
    assert course.training_format("fp16", False, cuda) == ("fp16", False)
    with pytest.raises(ValueError, match=r"PRECISION='fp16' needs a GPU"):
        course.training_format("fp16", None, cpu)
    with pytest.raises(ValueError, match=r"Unknown PRECISION='fp8': choose one of 'fp32'"):
        course.training_format("fp8", None, cuda)
    with pytest.raises(ValueError, match=r"CHANNELS_LAST='yes' must be None"):
        course.training_format("auto", "yes", cuda)


@pytest.mark.parametrize("stem", TRAINING_NOTEBOOKS)
def test_a_full_run_on_a_t4_trains_in_mixed_precision_channels_last(
    stem, t4, busi, tmp_path, capsys
):
    values = {**PROFILES["full"], "DATA_DIR": str(busi), "OUT_DIR": str(tmp_path / "out")}
    config = _notebook_config(stem, _open(stem, values))
    assert (config.precision, config.channels_last) == ("auto", True)
    assert (config.dataset, config.image_size, config.epochs) == ("busi", 224, 300)
    assert config.device == "cuda:0"
    assert "| device: cuda:0, training in fp16 (auto), channels-last |" in capsys.readouterr().out


@pytest.mark.parametrize("stem", TRAINING_NOTEBOOKS)
def test_the_quick_course_on_a_cpu_trains_in_fp32_as_before(stem, tmp_path, capsys):
    values = {**PROFILES["quick"], "DEVICE": "cpu", "OUT_DIR": str(tmp_path / "out")}
    config = _notebook_config(stem, _open(stem, values))
    assert (config.precision, config.channels_last, config.device) == ("fp32", False, "cpu")
    assert "| device: cpu, training in fp32 |" in capsys.readouterr().out
    # The parameters override what "auto" chooses.
    values.update(PRECISION="bf16", CHANNELS_LAST=True)
    config = _notebook_config(stem, _open(stem, values))
    assert (config.precision, config.channels_last) == ("bf16", True)


def test_a_run_trained_on_a_gpu_is_reused_on_a_cpu(tmp_path, monkeypatch, capsys):
    """04 on a CPU (fp32, contiguous) evaluates what 03 trained on a T4 (auto, channels-last):
    precision and memory format may change between machines, like the device."""
    gpu_run = preset("quick", image_size=32, epochs=2, precision="auto", channels_last=True)
    gpu_run = gpu_run.replace(device="cuda:0")
    gpu_run.save(tmp_path / TRAIN_CONFIG)
    (tmp_path / "last").mkdir()
    (tmp_path / "last" / TRAINING_STATE).touch()
    (tmp_path / LOG).write_text('{"epoch": 1}\n{"epoch": 2}\n')
    monkeypatch.setattr(course_session, "train", lambda *a, **k: pytest.fail("trained again"))
    on_cpu = gpu_run.replace(device="cpu", precision="fp32", channels_last=False)
    assert course.ensure_trained(on_cpu, tmp_path) == tmp_path
    assert "Reusing the finished run" in capsys.readouterr().out


# ---- DRIVE_RUNS ----------------------------------------------------------------------------


@pytest.fixture
def colab(monkeypatch, tmp_path):
    """A faked Colab: ``google.colab.drive.mount`` records its calls, and "Drive" is a folder
    of ``tmp_path``. Returns the list of mounted paths."""
    mounted: list[str] = []
    module = types.ModuleType("google.colab")
    module.drive = types.SimpleNamespace(mount=mounted.append)
    monkeypatch.setitem(sys.modules, "google.colab", module)
    monkeypatch.setattr(course_session, "DRIVE_MOUNT", tmp_path / "drive")
    monkeypatch.setattr(course_session, "DRIVE_RUNS_DIR", tmp_path / "drive/MyDrive/wavegms_runs")
    return mounted


def _drive_cell(stem: str) -> str:
    (cell,) = [s for s in _cells(stem) if "DRIVE_RUNS)" in s]
    code = [line for line in cell.splitlines() if line.strip() and not line.startswith("#")]
    assert len(code) == 1 and code[0].startswith("course.keep_runs_on_drive(session, DRIVE_RUNS)")
    return cell


@pytest.mark.parametrize("stem", TRAINING_NOTEBOOKS)
def test_drive_runs_keeps_the_notebooks_run_on_drive_in_colab(stem, colab, tmp_path, capsys):
    values = {**PROFILES["quick"], "DEVICE": "cpu", "OUT_DIR": str(tmp_path / "out")}
    namespace = _open(stem, values)
    assert namespace["DRIVE_RUNS"] is False, "off by default"
    exec(_drive_cell(stem), namespace)
    assert colab == [] and namespace["session"].runs_dir is None
    namespace["DRIVE_RUNS"] = True
    exec(_drive_cell(stem), namespace)
    assert colab == [str(tmp_path / "drive")]
    runs = tmp_path / "drive/MyDrive/wavegms_runs"
    assert runs.is_dir() and "kept on Google Drive in" in capsys.readouterr().out
    config = _notebook_config(stem, namespace)
    assert course.run_dir_for(namespace["session"], config).parent == runs


def test_drive_runs_outside_colab_says_so_in_one_line_and_changes_nothing(
    monkeypatch, tmp_path, capsys
):
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    session = course.start(device="cpu", out_dir=tmp_path / "out")
    capsys.readouterr()
    course.keep_runs_on_drive(session, True)
    printed = capsys.readouterr().out
    assert printed == (
        "DRIVE_RUNS=True keeps the training runs on Google Drive in Colab only: here they stay "
        f"in {tmp_path / 'out'}.\n"
    )
    assert session.runs_dir is None
    assert course.run_dir_for(session, preset("quick")).parent == tmp_path / "out"
    with pytest.raises(ValueError, match="DRIVE_RUNS='yes' must be True or False"):
        course.keep_runs_on_drive(session, "yes")


def test_after_a_disconnect_03_continues_its_run_from_drive(colab, tmp_path, monkeypatch, capsys):
    """A new runtime (a new session, an empty output folder) finds the interrupted run on
    Drive and resumes it from its last finished epoch."""
    before = course.start(device="cpu", out_dir=tmp_path / "lost")
    course.keep_runs_on_drive(before, True)
    config = course.course_config(before, image_size=32, epochs=3, batch_size=2, quick=True)
    run_dir = course.run_dir_for(before, config)
    run_dir.mkdir()
    config.save(run_dir / TRAIN_CONFIG)
    (run_dir / "last").mkdir()
    (run_dir / "last" / TRAINING_STATE).touch()
    (run_dir / LOG).write_text('{"epoch": 1}\n')  # the runtime disconnected in epoch 2

    after = course.start(device="cpu", out_dir=tmp_path / "new_runtime")
    course.keep_runs_on_drive(after, True)
    calls = []
    monkeypatch.setattr(
        course_session, "train", lambda config, run_dir, **kw: calls.append((run_dir, kw))
    )
    capsys.readouterr()
    again = course.course_config(after, image_size=32, epochs=3, batch_size=2, quick=True)
    assert course.ensure_trained(again, course.run_dir_for(after, again)) == run_dir
    ((trained, kwargs),) = calls
    assert trained == run_dir and kwargs["resume"] is True
    assert f"Continuing the run in {run_dir} after epoch 1 of 3." in capsys.readouterr().out


@pytest.mark.parametrize("stem", TRAINING_NOTEBOOKS)
def test_the_threads_parameter_reaches_torch_and_the_training_run(stem, tmp_path, capsys):
    before = torch.get_num_threads()
    try:
        values = {**PROFILES["quick"], "DEVICE": "cpu", "OUT_DIR": str(tmp_path / "out")}
        config = _notebook_config(stem, _open(stem, {**values, "THREADS": 1}))
        assert config.threads == 1 and torch.get_num_threads() == 1
        assert "CPU threads: 1 thread (set by --threads / THREADS)" in capsys.readouterr().out
        assert _notebook_config(stem, _open(stem, values)).threads is None  # chosen per run
    finally:
        torch.set_num_threads(before)
