"""The benchmark script runs end to end and writes the promised JSON (tiny sizes)."""

import argparse
import copy
import importlib.util
import json
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from wavegms.model import WaveGMS

REPO = Path(__file__).resolve().parents[1]


def load_bench(monkeypatch, name="bench"):
    spec = importlib.util.spec_from_file_location(name, REPO / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, name, module)  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_benchmark_writes_its_results(tmp_path, monkeypatch):
    bench = load_bench(monkeypatch)
    out = tmp_path / "results.json"
    arguments = ["--device", "cpu", "--image-size", "32", "--batch-sizes", "1", "2"]
    arguments += ["--predict-batch-sizes", "1", "--repeats", "1", "--warmup", "0"]
    assert bench.main([*arguments, "--out", str(out)]) == 0
    results = json.loads(out.read_text())
    rows = {(r["batch"], r["variant"]) for r in results["train"]}
    assert rows == {(1, "fp32"), (1, "fast"), (2, "fp32"), (2, "fast")}
    for row in results["train"]:
        assert row["step_s"] > 0 and row["floor_s"] > 0 and row["images_per_s"] > 0
        assert row["floor_ratio"] == row["step_s"] / row["floor_s"]
    assert results["predict_ms_b1"] > 0
    assert results["predict_decoder_ratio_b1"] > 0
    activations = results["saved_activation_mb_per_image"]
    fp16 = {"fp16"} if bench.runs_on(bench.VARIANTS["fp16"], torch.device("cpu")) else set()
    assert set(activations) == {"fp32", "fp32-cl", "amp", "fast"} | fp16
    assert activations["fast"] < activations["fp32"]
    assert results["machine"]["versions"]["torch"]
    assert "train_floor_ratio_b12" not in results  # only when batch 12 was measured

    # The training loop: a real epoch over 48 PNG images at batch 12, against its steps alone.
    loop = results["loop"]
    assert (loop["images"], loop["batch"], loop["steps"], loop["val_images"]) == (48, 12, 4, 12)
    assert loop["step_from"] == "a step measured for the loop"  # batch 12 is not in the table
    (epoch,) = loop["epochs"]
    assert epoch["train_time_s"] > 0 and epoch["val_time_s"] > 0
    assert results["loop_efficiency"] == loop["loop_efficiency"] == epoch["loop_efficiency"]
    assert results["loop_efficiency"] == pytest.approx(4 * loop["step_s"] / epoch["train_time_s"])


def test_a_contender_out_of_memory_in_the_timed_rounds_loses_only_its_row(tiny_vae, monkeypatch):
    bench = load_bench(monkeypatch)
    calls = []

    def step_that_fails_later(model, loss_fn, optimizer, images, *rest, **options):
        call = (len(images), not images.is_contiguous())  # channels-last: the fast variant
        calls.append(call)
        if call == (2, True) and calls.count(call) > 1:  # after its warm-up: the timed rounds
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real_step(model, loss_fn, optimizer, images, *rest, **options)

    real_step = bench.optimisation_step
    monkeypatch.setattr(bench, "optimisation_step", step_that_fails_later)
    args = argparse.Namespace(
        variants=["fp32", "fast"], image_size=32, warmup=1, repeats=2, time_budget=100.0
    )
    base = WaveGMS(copy.deepcopy(tiny_vae), image_size=32)
    rows = bench.bench_training(args, base, torch.device("cpu"), [1, 2])
    assert [(r["batch"], r["variant"], "step_s" in r) for r in rows] == [
        (1, "fp32", True),
        (1, "fast", True),
        (2, "fp32", True),
        (2, "fast", False),
    ]
    assert rows[-1]["oom"] is True
    assert len(rows[2]["times_s"]) == 2  # the others went on for every round
    assert "OOM" in bench.format_table({"train": rows, "predict": []})


def test_median_seconds_drops_what_runs_out_of_memory_and_times_the_rest(monkeypatch):
    bench = load_bench(monkeypatch)
    runs = {"ok": 0, "grows": 0}

    def grows():
        runs["grows"] += 1
        if runs["grows"] == 3:
            raise torch.OutOfMemoryError("CUDA out of memory")

    def ok():
        runs["ok"] += 1

    medians = bench.median_seconds({"ok": ok, "grows": grows}, torch.device("cpu"), 4, 1)
    assert set(medians) == {"ok"} and len(medians["ok"][1]) == 4
    assert runs == {"ok": 5, "grows": 3}  # dropped at its first failure, not called again

    def broken():
        raise RuntimeError("shape mismatch")

    with pytest.raises(RuntimeError, match="shape mismatch"):  # other errors still stop it
        bench.median_seconds({"broken": broken}, torch.device("cpu"), 1, 0)


def test_busi_like_data_trains_and_validates_on_exactly_the_items_asked_for(tmp_path, monkeypatch):
    from runs import make_prepared_dataset

    from wavegms.data.splits import make_splits

    bench = load_bench(monkeypatch)
    names = [f"item{i}" for i in range(14)]
    classes = {n: "normal" if i % 4 == 0 else "benign" for i, n in enumerate(names)}
    make_prepared_dataset(tmp_path / "real", "busi", dict.fromkeys(names, (20, 24)), classes)
    for source in (None, tmp_path / "real"):  # synthetic, or copies of a prepared BUSI
        data_dir = tmp_path / f"copy-of-{source.name if source else 'synthetic'}"
        settings, what = bench.busi_like_data(data_dir, 6, 3, 16, source)
        splits = make_splits(
            data_dir / "busi",
            settings["split"],
            val_fraction=settings["val_fraction"],
            test_fraction=settings["test_fraction"],
        )
        assert (len(splits.train), len(splits.val), len(splits.test)) == (6, 3, 1)
        assert settings["data_dir"] == str(data_dir) and settings["image_size"] == 16
        assert ("synthetic" in what) == (source is None)
    copied = sorted(p.stem for p in (data_dir / "busi" / "images").iterdir())
    assert copied == sorted(n for n in names if classes[n] != "normal")[:10]  # lesions only
    with pytest.raises(ValueError, match="has 10 images with lesions; 11 are needed"):
        bench.busi_like_data(tmp_path / "too-few", 7, 3, 16, tmp_path / "real")


def test_loop_data_must_be_a_prepared_busi_folder(tmp_path, monkeypatch):
    bench = load_bench(monkeypatch)
    with pytest.raises(SystemExit, match=r"python -m data_download busi --root .* --source"):
        bench.main(["--device", "cpu", "--data", str(tmp_path)])


def test_largest_batch_search_finds_the_limit(monkeypatch):
    bench = load_bench(monkeypatch)
    for limit_of_memory in (1, 2, 3, 12, 37, 64, 1000):
        tried = []

        def fits(batch, cap=limit_of_memory, tried=tried):
            tried.append(batch)
            return batch <= cap

        assert bench.largest_fitting(fits) == limit_of_memory
        assert len(tried) <= 2 * limit_of_memory.bit_length() + 1
        # Starting from a batch known to fit (a smaller card's) tries only larger ones.
        known = max(1, limit_of_memory // 3)
        tried.clear()
        assert bench.largest_fitting(fits, known=known) == limit_of_memory
        assert min(tried) > known
    assert bench.largest_fitting(lambda batch: False) is None
    assert bench.largest_fitting(lambda batch: True, limit=100) == 100
    assert bench.largest_fitting(lambda batch: True, limit=100, known=100) == 100


def test_a_batch_that_fits_a_16_gb_card_fits_a_t4_cuda_context_included(monkeypatch):
    """The card search on a simulated T4 (no GPU needed): an allocator that refuses what exceeds
    its cap, and a CUDA context of 0.4 GiB outside it that the budget must leave room for."""
    bench = load_bench(monkeypatch)
    gib = 2**30
    gpu = {"total": 14.745 * gib, "context": 0.4 * gib, "reserved": 0, "peak": 0, "fraction": 1.0}

    class FakeStep:  # 0.2 GiB for the model, 0.5 GiB per image, reserved by the allocator
        def __init__(self, *args):
            pass

        def __call__(self, images, masks):
            need = 0.2 * gib + len(images) * 0.5 * gib
            if need > gpu["fraction"] * gpu["total"]:
                raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 512.00 MiB")
            gpu["reserved"] = need
            gpu["peak"] = max(gpu["peak"], need)

    def empty_cache():
        gpu["reserved"] = 0  # every trial's tensors are gone by then

    def reset_peak(device):
        gpu["peak"] = gpu["reserved"]

    def set_fraction(fraction, device):
        assert isinstance(fraction, float) and 0 <= fraction <= 1 and device.index == 0
        gpu["fraction"] = fraction

    cuda = torch.cuda
    total = SimpleNamespace(total_memory=gpu["total"])
    monkeypatch.setattr(cuda, "get_device_properties", lambda device: total)
    monkeypatch.setattr(cuda, "get_device_capability", lambda device: (7, 5))  # a T4: fp16
    monkeypatch.setattr(cuda, "mem_get_info", lambda device: (free(), gpu["total"]))
    monkeypatch.setattr(cuda, "memory_reserved", lambda device: gpu["reserved"])
    monkeypatch.setattr(cuda, "max_memory_reserved", lambda device: gpu["peak"])
    monkeypatch.setattr(cuda, "max_memory_allocated", lambda device: gpu["peak"])
    monkeypatch.setattr(cuda, "reset_peak_memory_stats", reset_peak)
    monkeypatch.setattr(cuda, "empty_cache", empty_cache)
    monkeypatch.setattr(cuda, "synchronize", lambda device: None)
    monkeypatch.setattr(cuda, "set_per_process_memory_fraction", set_fraction)
    monkeypatch.setattr(bench, "TrainStep", FakeStep)
    monkeypatch.setattr(bench, "make_batch", lambda batch, size, device: (torch.zeros(batch), None))

    def free():
        return gpu["total"] - gpu["context"] - gpu["reserved"]

    args = argparse.Namespace(image_size=224)
    device = torch.device("cuda", 0)
    budgets = {cap: bench.card_budget_mb(cap) for cap in (12.0, 16.0, 24.0)}
    rows = bench.find_max_batches(args, None, device, budgets, ["fast"])
    # 12 GB card: 0.2 + 0.5 b + 0.4 <= 11.06 GiB; 16 GB: <= 14.745 (the T4 itself, within 1%).
    # Without the context, the search would report 21 and 29: a batch a T4 cannot hold.
    assert [(r["cap_gb"], r["dtype"], r["batch"]) for r in rows] == [
        (12.0, "float16", 20),
        (16.0, "float16", 28),
        (24.0, "float16", None),  # this GPU has less memory
    ]
    assert gpu["fraction"] == 1.0  # the allocator is uncapped again


def test_table_reports_the_largest_batches_with_their_precision(monkeypatch):
    bench = load_bench(monkeypatch)
    rows = [
        {
            "cap_gb": cap,
            "budget_mb": bench.card_budget_mb(cap),
            "variant": v,
            "dtype": d,
            "batch": b,
        }
        for cap, v, d, b in [
            (12.0, "fast", "bfloat16", 96),
            (16.0, "fp32", "float32", 0),
            (80.0, "fp32", "float32", None),
        ]
    ]
    table = bench.format_table({"train": [], "predict": [], "max_batch": rows})
    assert "| 12 GB (11.06 GiB) | fast (bfloat16) | 96 |" in table
    # What a T4, sold as 16 GB, offers in all (CUDA context included): 14.75 GiB, not 16.
    assert "| 16 GB (14.75 GiB) | fp32 (float32) | 0 |" in table
    assert "| 80 GB (73.75 GiB) | fp32 (float32) | (the GPU has less memory) |" in table
    assert f"memory rule: {bench.MEMORY_RULE}" in table and "CUDA context" in table
    assert "largest training batch" not in bench.format_table({"train": [], "predict": []})


def test_decode_fold_benchmark_compares_the_two_decodes(monkeypatch, capsys):
    decode_fold = load_bench(monkeypatch, "decode_fold")
    arguments = ["--image-size", "32", "--repeats", "2", "--calls", "1", "--warmup", "0"]
    ratio = decode_fold.main(arguments)
    assert ratio > 0
    assert f"median ratio folded / public: {ratio:.3f}" in capsys.readouterr().out
