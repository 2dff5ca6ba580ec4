"""Timing, serving and dollars: numbers a person can check with a calculator."""

from __future__ import annotations

import json

import numpy as np
import pytest

import costsim
from costsim.cli import main
from costsim.engine.timing import decode_step_time, prefill_time
from costsim.inputs.hardware import load_hardware
from costsim.serving.capacity import evaluate
from costsim.spec.deployment import Deployment

CONTRACT = {"model", "hardware", "context_tokens", "batch", "params_total", "params_active", "weight_bytes",
            "cache_bytes_per_sequence", "cache_bytes_by_kind", "prefill_flops", "decode_flops_per_token",
            "decode_bytes_per_step", "ttft_s", "tpot_s", "decode_tokens_per_s", "prefill_tokens_per_s", "max_batch",
            "fits_memory", "usd_per_mtok_input", "usd_per_mtok_output"}


@pytest.fixture(scope="module")
def h100():
    return load_hardware("h100-sxm")


def test_llama8b_decode_is_weights_plus_kv_over_bandwidth(h100):
    spec = costsim.load_model("llama-3.1-8b")
    step = decode_step_time(spec, h100, 8192, 1).total_s
    weights = 8_030_261_248 * 2
    kv = 131_072 * 8192
    e = h100.efficiency
    bandwidth = 3.35e12 * e.memory_max
    # the roofline, plus the fixed time per GEMM kernel that calibration measured on cuBLASLt
    # (7 GEMMs per layer: q, k, v, o, gate, up, down) ...
    hand = (weights + kv) / bandwidth + 32 * 7 * e.matmul_latency_s
    # ... plus four one-token elementwise kernels per layer (two add+norms, rotary, SiLU*up) and the final
    # norm, each a fixed latency (their few kilobytes are negligible) ...
    hand += (32 * 4 + 1) * e.elementwise_latency_s
    # ... plus a graph node's launch gap for each of the 12 kernels per layer (7 GEMMs, attention, 4
    # elementwise), the final norm and the LM head
    hand += (32 * 12 + 2) * e.graph_overhead_s
    assert step == pytest.approx(hand, rel=0.05)


def test_llama8b_prefill_is_compute_bound(h100):
    spec = costsim.load_model("llama-3.1-8b")
    cost = costsim.prefill_cost(spec, 8192)
    attention = cost.by_kind["dense"].flops_matrix - 2 * 8192 * 32 * (4096 * 4096 * 2 + 2 * 4096 * 1024)
    gemm = cost.total.flops_matrix - attention
    e = h100.efficiency
    # each GEMM runs at K / (K + matmul_half_k) of the curve: K = 4096 everywhere but the down projection (14336)
    down = 2 * 8192 * 32 * 14336 * 4096
    stretched = (gemm - down) * (4096 + e.matmul_half_k) / 4096 + down * (14336 + e.matmul_half_k) / 14336
    hand = stretched / (989.4e12 * e.matmul_max) + attention / (989.4e12 * e.attention_max)
    # plus the elementwise passes over the activations, memory-bound: per token and layer two add+norms
    # (4 x 4096 elements each), rotary on q and k (2 x 40 heads x 128), the cache write of K and V
    # (4 x 8 heads x 128) and SiLU*up (3 x 14336), bf16
    streamed = 8192 * 32 * (2 * 4 * 4096 + 2 * 40 * 128 + 4 * 8 * 128 + 3 * 14336) * 2
    hand += streamed / (3.35e12 * e.memory_max)
    assert prefill_time(spec, h100, 8192).total_s == pytest.approx(hand, rel=0.05)


def test_output_price_rises_with_context_for_softmax_and_is_flat_for_mamba2(h100):
    t = np.logspace(3, 6, 40)
    llama = evaluate(costsim.load_model("llama-3.1-8b"), h100, Deployment(), t, batch=1)["usd_per_mtok_output"]
    assert np.all(np.diff(llama) >= 0)
    mamba = evaluate(costsim.load_model("mamba2-2.7b"), h100, Deployment(), t, batch=1)["usd_per_mtok_output"]
    assert mamba.max() / mamba.min() < 1.02


def test_usd_per_mtok_is_price_over_tokens_per_hour(h100):
    r = costsim.estimate("llama-3.1-8b", "h100-sxm", context=8192, batch=4)
    assert r["usd_per_mtok_output"] == pytest.approx(2.25 / (r["decode_tokens_per_s"] * 3600) * 1e6)
    assert r["decode_tokens_per_s"] == pytest.approx(4 / r["tpot_s"])


def test_max_batch_is_memory_over_cache(h100):
    r = costsim.estimate("llama-3.1-8b", "h100-sxm", context=32768, engine=None)  # costsim's own 10% reserve
    usable = 81_559 * 2**20 * 0.9 - 8_030_261_248 * 2  # nvidia-smi total of an H100 SXM, 90% of it, bf16 weights
    assert r["max_batch"] == int(usable // (131_072 * 32768))
    assert r["batch"] == r["max_batch"] and r["fits_memory"]


def test_model_too_big_says_by_how_much():
    r = costsim.estimate("deepseek-v3", "h100-sxm", context=4096, single_device=True)
    assert not r["fits_memory"] and r["max_batch"] == 0
    assert r["memory_shortfall_bytes"] > 671e9 * 2 - 80e9
    assert r["tpot_s"] is None and r["usd_per_mtok_output"] is None and "needs >= " in r["reason"]


def test_tpot_target_picks_a_batch_that_meets_it():
    free = costsim.estimate("llama-3.1-8b", "h100-sxm", context=4096)
    capped = costsim.estimate("llama-3.1-8b", "h100-sxm", context=4096, tpot_ms=10)
    assert free["tpot_s"] > 0.010  # the largest batch that fits is too slow for the target
    assert capped["tpot_s"] <= 0.010 and 1 <= capped["batch"] < free["batch"]
    one_more = costsim.estimate("llama-3.1-8b", "h100-sxm", context=4096, batch=capped["batch"] + 1)
    assert one_more["tpot_s"] > 0.010  # and it is the largest that meets it


def test_estimate_json_contract(capsys):
    assert main(["estimate", "-f", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) >= CONTRACT
    assert out["hardware"] == "h100-sxm" and out["context_tokens"] == 32_000


def test_price_override_scales_dollars(capsys):
    main(["estimate", "--batch", "8", "-f", "json"])
    base = json.loads(capsys.readouterr().out)
    main(["estimate", "--batch", "8", "--price", "4.5", "-f", "json"])
    double = json.loads(capsys.readouterr().out)
    assert double["usd_per_mtok_output"] == pytest.approx(2 * base["usd_per_mtok_output"])


def test_output_file_is_written(tmp_path, capsys):
    target = tmp_path / "e.csv"
    assert main(["estimate", "-f", "csv", "-o", str(target)]) == 0
    assert target.read_text().startswith("model,hardware,")
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize(("args", "needle"), [
    (["estimate", "-H", "tpu-v99"], "tpu-v99"),
    (["estimate", "-m", "gpt-17"], "gpt-17"),
    (["estimate", "--price", "-1"], "--price"),
    (["estimate", "--price", "0"], "--price"),
    (["estimate", "--context", "abc"], "--context"),
    (["estimate", "--batch", "0"], "--batch"),
    (["estimate", "--tpot-ms", "-3"], "--tpot-ms"),
    (["estimate", "-o", "/no/such/dir/out.json"], "--output"),
])
def test_bad_estimate_input(args, needle, capsys):
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and needle in err[0] and "Traceback" not in err[0]


def test_malformed_profile(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x"\n[dense_tflops\n')
    assert main(["estimate", "-H", str(bad)]) == 2
    assert "malformed TOML" in capsys.readouterr().err
    bad.write_text('name = "x"\ndisplay_name = "x"\nvendor = "nvidia"\nvector_tflops = 1\nmemory_gb = -80\n'
                   'hbm_bandwidth_tb_s = 1\nusd_per_hour = 1\nprice_date = "2026"\n[dense_tflops]\nbf16 = 100\n')
    assert main(["estimate", "-H", str(bad)]) == 2
    assert "memory_gb" in capsys.readouterr().err


def test_cached_input_is_one_read_of_the_cache_entry():
    r = costsim.estimate("llama-3.1-8b", "h100-sxm", context=8192)
    tokens_per_s = 3.35e12 * load_hardware("h100-sxm").efficiency.memory_max / 131_072
    assert r["usd_per_mtok_cached_input"] == pytest.approx(2.25 / (tokens_per_s * 3600) * 1e6)
    assert costsim.estimate("mamba2-2.7b", "h100-sxm", context=8192)["usd_per_mtok_cached_input"] == 0


def test_request_mode_adds_up():
    r = costsim.estimate("llama-3.1-8b", "h100-sxm", prompt="30k", output_tokens="2k")
    assert r["context_tokens"] == 32_000  # memory sized for the whole sequence
    assert r["request_latency_s"] == pytest.approx(r["ttft_s"] + 2000 * r["tpot_s"])
    dollars = (30_000 * r["usd_per_mtok_input"] + 2000 * r["usd_per_mtok_output"]) / 1e6
    assert r["usd_per_request"] == pytest.approx(dollars)
    # decode is priced at the average context, so cheaper than at the full 32k
    assert r["tpot_s"] < costsim.estimate("llama-3.1-8b", "h100-sxm", context=32_000, batch=r["batch"])["tpot_s"]
