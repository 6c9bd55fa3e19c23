"""The benchmark script runs end to end and writes the promised JSON (tiny sizes)."""

import importlib.util
import json
import sys
from pathlib import Path

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
    assert set(activations) == {"fp32", "fp32-cl", "amp", "fast"}
    assert activations["fast"] < activations["fp32"]
    assert results["machine"]["versions"]["torch"]
    assert "train_floor_ratio_b12" not in results  # only when batch 12 was measured


def test_largest_batch_search_finds_the_limit(monkeypatch):
    bench = load_bench(monkeypatch)
    for limit_of_memory in (1, 2, 3, 12, 37, 64, 1000):
        tried = []

        def fits(batch, cap=limit_of_memory, tried=tried):
            tried.append(batch)
            return batch <= cap

        assert bench.largest_fitting(fits) == limit_of_memory
        assert len(tried) <= 2 * limit_of_memory.bit_length() + 1
    assert bench.largest_fitting(lambda batch: False) is None
    assert bench.largest_fitting(lambda batch: True, limit=100) == 100


def test_table_reports_the_largest_batches_with_their_precision(monkeypatch):
    bench = load_bench(monkeypatch)
    rows = [
        {"cap_gb": 12.0, "variant": "fast", "dtype": "bfloat16", "batch": 96},
        {"cap_gb": 16.0, "variant": "fp32", "dtype": "float32", "batch": 0},
        {"cap_gb": 80.0, "variant": "fp32", "dtype": "float32", "batch": None},
    ]
    table = bench.format_table({"train": [], "predict": [], "max_batch": rows})
    assert "| 12 GB | fast (bfloat16) | 96 |" in table
    assert "| 16 GB | fp32 (float32) | 0 |" in table
    assert "| 80 GB | fp32 (float32) | (the GPU has less memory) |" in table
    assert "largest training batch" not in bench.format_table({"train": [], "predict": []})


def test_decode_fold_benchmark_compares_the_two_decodes(monkeypatch, capsys):
    decode_fold = load_bench(monkeypatch, "decode_fold")
    arguments = ["--image-size", "32", "--repeats", "2", "--calls", "1", "--warmup", "0"]
    ratio = decode_fold.main(arguments)
    assert ratio > 0
    assert f"median ratio folded / public: {ratio:.3f}" in capsys.readouterr().out
