"""The calibrated timing model against the committed measurements (deterministic, so bounds are
tests; figures in docs/validation.md). Issue 5's targets are median <= 10% and p90 <= 25% per op
class and production source."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from costsim.cli import main
from costsim.spec.measurement import read_measurements
from costsim.validate import predict_record, validate

MEASUREMENTS = Path(__file__).parent.parent / "measurements"


@pytest.fixture(scope="module")
def result():
    records = [r for path in sorted(MEASUREMENTS.glob("*.jsonl")) for r in read_measurements(path)]
    return validate(records)


@pytest.mark.parametrize(("group", "median", "p90"), [
    ("cublas: gemm/gemm", 0.10, 0.25),
    ("microbench: copy/copy", 0.10, 0.25),
    ("microbench: attention_decode/gqa", 0.10, 0.25),
    ("microbench: attention_decode/mla", 0.10, 0.25),
    ("microbench: linear_decode/gdn", 0.10, 0.25),
    ("microbench: linear_decode/mamba2", 0.10, 0.25),
    ("torch-sdpa-cudnn: attention_decode/gqa", 0.10, 0.25),
    ("torch-sdpa-cudnn: attention_prefill/causal", 0.10, 0.25),
    ("torch-sdpa-flash: attention_prefill/causal", 0.10, 0.25),
    ("fla: linear_prefill/gdn", 0.10, 0.25),
    ("fla: linear_prefill/kda", 0.10, 0.25),
    ("fla: linear_decode/kda", 0.10, 0.25),
])
def test_error_bounds_that_hold(result, group, median, p90):
    stats = result["summary"]["by_implementation"][group]
    assert stats["count"] >= 9
    assert stats["median_abs"] <= median and stats["p90_abs"] <= p90


def test_flash_decode_misses_p90_on_h200_only(result):
    """A known miss of issue 5's p90 target, kept visible: PyTorch's FlashAttention-2 decode path falls to
    ~2.5 TB/s at batch 64 on both GPUs (a kernel regime, not a bandwidth curve), which the H200's 4.8 TB/s
    curve over-predicts by ~40%. On H100 the same records stay inside the target."""
    by_hw: dict[str, list[float]] = {}
    for r in result["records"]:
        if r["source"] == "torch-sdpa-flash" and r["op"] == "attention_decode":
            by_hw.setdefault(r["hardware"], []).append(abs(r["error"]))
    assert np.median(by_hw["h100-sxm"]) <= 0.10 and np.percentile(by_hw["h100-sxm"], 90) <= 0.25
    assert np.median(by_hw["h200"]) <= 0.10 and np.percentile(by_hw["h200"], 90) <= 0.45
    worst = [r for r in result["records"] if r["source"] == "torch-sdpa-flash" and r["op"] == "attention_decode"
             and abs(r["error"]) > 0.25]
    assert worst and all(r["batch"] >= 64 and r["error"] < 0 for r in worst)


def test_end_to_end_model_steps(result):
    """Whole synthetic model steps (microbench/model_step.py, CUDA graphs) against the engine with the
    calibrated top-level profile, as `costsim estimate` uses it: within 15% on both GPUs but one H200
    Qwen-like decode at batch 16 (15.02%: cuDNN's head-256 decode attention and small kernels, see
    docs/validation.md), leaving out the DeepSeek-like MLA decode. Its absorbed attention ran as batched
    GEMMs + a separate softmax, or from batch 16 on the H200 as mla_decode.py's Triton kernel at about
    200 TFLOP/s; no FlashMLA-class kernel was available. The engine assumes that class (about 680 TFLOP/s
    at batch 64), so it must under-predict those steps, and they test nothing else."""
    steps = [r for r in result["records"] if r["op"] == "model_step"]
    assert len(steps) >= 50 and {r["hardware"] for r in steps} == {"h100-sxm", "h200"}
    mla_decode = [r for r in steps if r["model_name"] == "deepseek-v3-mla-16l" and r["phase"] == "decode"]
    checked = [r for r in steps if r not in mla_decode]
    errors = np.abs([r["error"] for r in checked])
    assert len(checked) >= 40 and np.max(errors) <= 0.16 and np.median(errors) <= 0.08
    over = [r for r in checked if abs(r["error"]) > 0.15]
    assert len(over) <= 1 and all(r["hardware"] == "h200" and r["model_name"] == "qwen3-next-dense-ffn"
                                  and r["phase"] == "decode" and r["batch"] == 16 for r in over)
    assert {r["model_name"] for r in checked} == {"llama-3.1-8b", "qwen3-next-dense-ffn", "deepseek-v3-mla-16l"}
    assert mla_decode and all(-0.45 < r["error"] < 0 for r in mla_decode)
    assert {r["attention_kernel"] for r in mla_decode} == {"torch-bmm-absorbed-mla", "triton-mla-decode"}


def test_every_record_is_predicted_with_signed_error(result):
    for r in result["records"]:
        assert r["predicted_s"] > 0
        assert r["error"] == pytest.approx(r["predicted_s"] / r["time_s"] - 1)


def test_large_copy_is_bandwidth_over_efficiency():
    from costsim.hardware import load_hardware

    hw = load_hardware("h100-sxm")
    e = hw.efficiency
    record = {"op": "copy", "bytes": 2**30, "mode": "copy", "dtype": "int8", "source": "microbench",
              "hardware": "h100-sxm", "gpu_name": "x", "time_s": 1.0}
    moved = 2 * 2**30
    expected = moved / (3.35e12 * e.memory_max * moved / (moved + e.memory_half_bytes)) + e.graph_overhead_s
    assert predict_record(record, hw) == pytest.approx(expected)


def test_validate_cli_json_contract(tmp_path, capsys):
    assert main(["validate", str(MEASUREMENTS / "h200.jsonl"), "-f", "json", "-o", str(tmp_path / "v.json")]) == 0
    import json

    out = json.loads((tmp_path / "v.json").read_text())
    assert set(out) == {"records", "summary"}
    assert {"by_op", "by_family", "by_source"} <= set(out["summary"])


def test_validate_bad_file(capsys, tmp_path):
    assert main(["validate", str(tmp_path / "none.jsonl")]) == 2
    assert "no such measurement file" in capsys.readouterr().err
