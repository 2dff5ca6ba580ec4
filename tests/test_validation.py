"""The calibrated timing model against the committed measurements (deterministic, so bounds are
tests; figures in docs/validation.md). Issue 5's targets are median <= 10% and p90 <= 25% per op
class and production source."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from costsim.cli import main
from costsim.evidence.validate import predict_record, validate
from costsim.inputs.measurements import read_measurements

MEASUREMENTS = Path(__file__).parent.parent / "measurements"


@pytest.fixture(scope="module")
def result():
    records = [r for path in sorted(MEASUREMENTS.glob("*.jsonl")) for r in read_measurements(path)]
    return validate(records)


@pytest.mark.parametrize(("group", "median", "p90"), [
    ("cublas: gemm/gemm", 0.10, 0.25),
    ("microbench: copy/copy", 0.10, 0.25),
    ("microbench: attention_decode/gqa_d128", 0.10, 0.25),
    ("microbench: attention_decode/mla", 0.10, 0.25),
    ("microbench: linear_decode/gdn", 0.10, 0.25),
    ("microbench: linear_decode/mamba2", 0.10, 0.25),
    ("torch-sdpa-cudnn: attention_decode/gqa_d128", 0.10, 0.25),
    ("torch-sdpa-cudnn: attention_decode/gqa_d256", 0.10, 0.25),
    ("torch-sdpa-cudnn: attention_decode/gqa_d64", 0.10, 0.25),
    ("torch-sdpa-cudnn: attention_prefill/causal", 0.10, 0.25),
    ("torch-sdpa-flash: attention_prefill/causal", 0.10, 0.25),
    ("fla: linear_prefill/gdn", 0.10, 0.25),
    ("fla: linear_prefill/kda", 0.10, 0.25),
    ("fla: linear_decode/kda", 0.10, 0.25),
    ("fla: linear_prefill/gla", 0.10, 0.25),
])
def test_error_bounds_that_hold(result, group, median, p90):
    stats = result["summary"]["by_implementation"][group]
    assert stats["count"] >= 9
    assert stats["median_abs"] <= median and stats["p90_abs"] <= p90


def test_flash_decode_meets_the_target_with_its_tile_padding(result):
    """PyTorch's FlashAttention-2 decode switches to its unsplit kernel, whose 128-row query tile pads the
    GQA group, once batch x kv_heads >= 0.8 x 2 x SMs (costsim/families/kernel_tiles.py). With that padding the
    fitted tables meet issue 5's targets on both GPUs; without it the H200's p90 was 39%."""
    by_hw: dict[str, list[float]] = {}
    for r in result["records"]:
        if r["source"] == "torch-sdpa-flash" and r["op"] == "attention_decode":
            by_hw.setdefault(r["hardware"], []).append(abs(r["error"]))
    for hw in ("h100-sxm", "h200"):
        assert np.median(by_hw[hw]) <= 0.10 and np.percentile(by_hw[hw], 90) <= 0.25


def test_flashmla_is_weak_only_at_small_batch(result):
    """FlashMLA over all its records (fitted and held out; the held-out ones meet the target,
    test_calibrate): median within 10%, and every record off by more than 25% is at batch <= 4, where one
    sequence is split over all 132 SMs and time is not a line in the bytes (H200, 128 heads, batch 1:
    28 us at 8k context, 41 us at 16k, 44 us at 32k), or at 1k context, where 15-20 us of fixed time is
    nearly all there is."""
    flash = [r for r in result["records"] if r["source"] == "flashmla"]
    errors = np.abs([r["error"] for r in flash])
    assert len(flash) >= 90 and np.median(errors) <= 0.10
    worst = [r for r in flash if abs(r["error"]) > 0.25]
    assert worst and all(r["batch"] <= 4 or r["context"] == 1024 for r in worst)


def test_flash_decode_split_switch_is_where_the_rule_puts_it():
    """The measured step in time (H200, 16 query / 2 KV heads, 8k context: 221 us at batch 105, 411 us
    at 106) sits exactly where FlashAttention-2's heuristic stops splitting: 2 x 106 = 212 >= 211.2."""
    from costsim.families.kernel_tiles import decode_query_rows, flash2_decode_splits_kv

    records = {(r["batch"], r["context"], r["heads"]): r["time_s"]
               for r in read_measurements(MEASUREMENTS / "h200-torch-fa2-split.jsonl")
               if r.get("source") == "torch-sdpa-flash"}
    assert records[(106, 8192, 16)] > 1.7 * records[(105, 8192, 16)]
    assert records[(27, 4096, 32)] > 1.5 * records[(26, 4096, 32)]
    assert flash2_decode_splits_kv(105, 2, 8, 132) and not flash2_decode_splits_kv(106, 2, 8, 132)
    assert flash2_decode_splits_kv(26, 8, 4, 132) and not flash2_decode_splits_kv(27, 8, 4, 132)
    assert decode_query_rows("torch-sdpa-flash", 105, 16, 2, 132) == 64
    assert decode_query_rows("torch-sdpa-flash", 106, 16, 2, 132) == 128
    assert decode_query_rows("torch-sdpa-cudnn", 106, 16, 2, 132) == 8
    assert decode_query_rows("flashmla", 4, 16, 1, 132) == 64  # tensor parallelism 8 of DeepSeek-V3
    assert decode_query_rows("flashmla", 4, 128, 1, 132) == 128


def test_end_to_end_model_steps(result):
    """Whole synthetic model steps (microbench/model_step.py, CUDA graphs) against the engine with the
    calibrated profile, as `costsim estimate` uses it (MLA decode with FlashMLA's fitted table, as the
    engine assumes FlashMLA): every checked point within 15% on both GPUs. Two sets of decode steps ran
    their attention on kernels the engine does not price, and are left out of the check but bounded here:
    the DeepSeek-like steps on our stand-ins for FlashMLA (batched GEMMs + softmax, or mla_decode.py's
    Triton kernel at about 200 TFLOP/s), and the Qwen3-Next-like steps whose head-dim-256 attention ran on
    cuDNN, whose decode kernel at that head dim streams the cache at about 0.75 of its rate at 128
    (h200-torch-head-dim.jsonl); the harness now picks the faster backend, FlashAttention-2 there."""
    steps = [r for r in result["records"] if r["op"] == "model_step" and "step_style" not in r]
    assert len(steps) >= 50 and {r["hardware"] for r in steps} == {"h100-sxm", "h200"}
    stand_ins = [r for r in steps if r["model_name"] == "deepseek-v3-mla-16l" and r["phase"] == "decode"
                 and r["attention_kernel"] != "flashmla"]
    cudnn_d256 = [r for r in steps if r["model_name"] == "qwen3-next-dense-ffn" and r["phase"] == "decode"
                  and r["attention_kernel"] == "torch-sdpa-cudnn"]
    kimi = [r for r in steps if r["model_name"] == "kimi-linear-dense-ffn"]  # test_kimi_linear_steps
    checked = [r for r in steps if r not in stand_ins and r not in cudnn_d256 and r not in kimi]
    errors = np.abs([r["error"] for r in checked])
    assert len(checked) >= 50 and np.max(errors) <= 0.15 and np.median(errors) <= 0.08
    assert {r["model_name"] for r in checked} == {"llama-3.1-8b", "llama-3.1-70b", "qwen3-next-dense-ffn",
                                                  "deepseek-v3-mla-16l", "mistral-7b-v0.1"}
    qwen_decode = [r for r in checked if r["model_name"] == "qwen3-next-dense-ffn" and r["phase"] == "decode"]
    assert len(qwen_decode) >= 6 and {r["attention_kernel"] for r in qwen_decode} == {"torch-sdpa-flash"}
    flash = [r for r in checked if r.get("attention_kernel") == "flashmla"]
    assert len(flash) >= 5 and all(r["phase"] == "decode" and abs(r["error"]) <= 0.15 for r in flash)
    assert stand_ins and all(-0.45 < r["error"] < 0 for r in stand_ins)
    assert {r["attention_kernel"] for r in stand_ins} == {"torch-bmm-absorbed-mla", "triton-mla-decode"}
    # the slower kernel shows as under-prediction, never as a miss the other way
    assert len(cudnn_d256) >= 12 and all(-0.16 < r["error"] <= 0.01 for r in cudnn_d256)


def test_kimi_linear_steps(result):
    """The Kimi-Linear-like hybrid (20 KDA layers through fla, 7 MLA layers with FlashMLA decode), added
    after the issue's three models, is not within 15% everywhere: prefill is (within 12%), decode is
    11-20% under at every point. Its eager profiles (h200-model-step-kimi.log) put the gap in the
    harness's small kernels (1.33 ms of elementwise work at batch 128 against costsim's 0.26 ms) and in
    fla's KDA state update, 168 us per layer there against 139 us for the same shape measured alone: with
    q, k l2-normalised inside the kernel, as the model runs it, KDA's kernel is 8-14% slower
    (h200-fla-l2norm.log)."""
    steps = [r for r in result["records"] if r["op"] == "model_step" and r["model_name"] == "kimi-linear-dense-ffn"]
    decode = [r for r in steps if r["phase"] == "decode"]
    prefill = [r for r in steps if r["phase"] == "prefill"]
    assert len(decode) == 6 and len(prefill) == 4
    assert {r["attention_kernel"] for r in decode} == {"flashmla"}
    assert all(-0.12 < r["error"] < 0 for r in prefill)
    assert all(-0.20 < r["error"] < -0.10 for r in decode)


def test_sliding_window_steps(result):
    """Mistral-7B-v0.1 (every layer a 4,096-token window) on the H200: decode past the window reads a
    capped cache, so one sequence's step takes the same time at 8k and 128k context, measured and
    predicted; prefill past the window (FlexAttention's sliding block mask) grows linearly in the prompt."""
    steps = {(r["phase"], r["batch"], r["context"] or r["seq_len"]): r for r in result["records"]
             if r["op"] == "model_step" and r["model_name"] == "mistral-7b-v0.1"}
    assert len(steps) == 10 and all(abs(r["error"]) <= 0.10 for r in steps.values())
    short, long = steps[("decode", 1, 8192)], steps[("decode", 1, 131072)]
    assert long["time_s"] == pytest.approx(short["time_s"], rel=0.01)
    assert long["predicted_s"] == pytest.approx(short["predicted_s"], rel=1e-9)
    prefill = [steps[("prefill", 1, n)] for n in (16384, 32768)]
    assert prefill[1]["time_s"] / prefill[0]["time_s"] == pytest.approx(2.0, rel=0.05)
    assert {r["attention_kernel"] for r in prefill} == {"torch-flex-sliding"}


def test_softmax_decode_tables_are_per_head_dim(result):
    """cuDNN's decode at head dim 256 runs another kernel, about 0.75 of the rate of its 128 one: on the
    one table for both, its records were 16-29% slow; each head dim now has its own fitted table."""
    from costsim.evidence.validate import implementation_key
    from costsim.inputs.hardware import load_hardware

    hw = load_hardware("h200")
    d256 = [r for r in result["records"] if r["source"] == "torch-sdpa-cudnn" and r["op"] == "attention_decode"
            and r["head_dim"] == 256]
    assert len(d256) == 20
    key = implementation_key(d256[0])
    assert key == "torch-sdpa-cudnn/attention_decode/gqa_d256"
    assert implementation_key(dict(d256[0], head_dim=128)) == "torch-sdpa-cudnn/attention_decode/gqa_d128"
    tables = hw.efficiency.implementations
    assert tables[key]["memory_max"] < 0.8 * tables["torch-sdpa-cudnn/attention_decode/gqa_d128"]["memory_max"]
    assert all(abs(r["error"]) < 0.12 for r in d256 if r["batch"] >= 4)


def test_every_record_is_predicted_with_signed_error(result):
    for r in result["records"]:
        assert r["predicted_s"] > 0
        assert r["error"] == pytest.approx(r["predicted_s"] / r["time_s"] - 1)


def test_large_copy_is_bandwidth_over_efficiency():
    from costsim.inputs.hardware import load_hardware

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


def test_tensor_parallel_steps_on_two_gpus(result):
    """Llama-3.1-8B and -70B at tensor parallelism 2 on 2 x H200 (NVLink, NCCL, CUDA graphs), against the
    engine's sharded step with its all-reduces (serving/layouts.py): every point within 10%."""
    tp = [r for r in result["records"] if r["op"] == "model_step" and r.get("layout", {}).get("tp") == 2]
    assert len(tp) >= 15 and {r["phase"] for r in tp} == {"decode", "prefill"}
    assert max(abs(r["error"]) for r in tp) <= 0.10
    batched_prefill = [r for r in tp if r["phase"] == "prefill" and r["batch"] > 1]
    assert batched_prefill, "a batch of prompts prefilled together is priced as that batch, not as one prompt"
