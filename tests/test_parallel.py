"""Multi-device layouts (issue 7): sharded memory by hand, collectives by formula, the search, and
one-line errors for layouts no system would run."""

from __future__ import annotations

import json

import numpy as np
import pytest

import costsim
from costsim.cli import main
from costsim.engine import comm
from costsim.engine.sharding import pipeline_stages, shard_model, stage_weight_bytes
from costsim.errors import CostsimError
from costsim.inputs.hardware import load_hardware
from costsim.serving.capacity import estimate
from costsim.serving.layouts import evaluate_layout
from costsim.serving.plan import plan
from costsim.spec.deployment import Deployment
from costsim.spec.dtypes import Precision
from costsim.spec.layout import Layout, parse_layout


@pytest.fixture(scope="module")
def h100():
    return load_hardware("h100-sxm")


def test_deepseek_v3_fp8_needs_more_than_one_h100_and_plan_says_how_many(h100):
    spec = costsim.load_model("deepseek-v3")
    dep = Deployment(weights="fp8")
    one = evaluate_layout(spec, h100, dep, Layout(), 32768)
    assert not one["fits_memory"] and "does not fit" in one["reason"]
    result = plan(spec, h100, dep, 32768)
    smallest = result["fewest_devices"]
    # 671 GB of fp8 weights over 72 GB usable per H100 (80 GB less the 10% reserve): at least 10 devices
    # once the heaviest stage is all MoE layers (7 of 61 at 11.5 B parameters each)
    assert 9 < smallest["devices"] <= 12
    assert all(r["devices"] >= smallest["devices"] for r in result["feasible"])
    assert any(r["devices"] < smallest["devices"] and "does not fit" in r["reason"] for r in result["rejected"])


def test_llama70b_at_1m_by_hand(h100):
    spec = costsim.load_model("llama-3.1-70b")
    r = evaluate_layout(spec, h100, Deployment(), Layout(tp=8), 1_000_000)
    # 80 layers x 8 KV heads x 128 x 2 (K, V) x 2 bytes = 327,680 B per token; tp=8 leaves one KV head each
    assert r["cache_bytes_per_sequence_per_device"] == pytest.approx(327_680 * 1_000_000 / 8)
    weights = (70_553_706_496 - 2 * 128_256 * 8192) * 2 / 8 + 2 * np.ceil(128_256 / 8) * 8192 * 2
    assert r["weight_bytes_per_device"] == pytest.approx(weights, rel=1e-3)
    usable = 80e9 * 0.9 - r["weight_bytes_per_device"]
    assert r["max_batch"] == int(usable // r["cache_bytes_per_sequence_per_device"]) == 1
    # $/Mtok out = 8 devices x $2.25/h / (1 token per TPOT x 3600 s) x 1e6
    assert r["usd_per_mtok_output"] == pytest.approx(8 * 2.25 / 3600 * r["tpot_s"] * 1e6)
    # tp=4 leaves 82 GB of cache per sequence per device: does not fit
    assert not evaluate_layout(spec, h100, Deployment(), Layout(tp=4), 1_000_000)["fits_memory"]


def test_pipeline_stages_hold_the_embedding_and_head_only_at_the_ends(h100):
    spec = costsim.load_model("llama-3.1-8b")
    # Llama-3.1-8B by hand: a layer is q, o 4096^2 + k, v 4096 x 1024 + 3 x 4096 x 14336 + two norms
    # = 218,112,000 parameters; the embedding and the (untied) head are 128,256 x 4096 = 525,336,576 each
    layer, matrix = 218_112_000, 525_336_576
    r = evaluate_layout(spec, h100, Deployment(), Layout(pp=4), 8192)
    # 8 layers per stage; the heaviest device is the last stage: head + final norm (4096)
    assert r["weight_bytes_per_device"] == 2 * (8 * layer + matrix + 4096)
    blocks, order = pipeline_stages(spec, 4)
    stages = [shard_model(spec, Layout(pp=4), b) for b in blocks]
    per_stage = stage_weight_bytes(stages, order, Precision(weights="bf16"))
    assert per_stage == [2 * (8 * layer + matrix), 2 * 8 * layer, 2 * 8 * layer, 2 * (8 * layer + matrix + 4096)]
    assert sum(per_stage) == 2 * 8_030_261_248  # every parameter once, none twice


def test_tied_embeddings_are_held_by_both_ends_of_a_pipeline():
    spec = costsim.load_model("gemma-3-27b")
    assert spec.tie_embeddings
    total = costsim.param_counts(spec).total
    for pp in (2, 4, 31):
        blocks, order = pipeline_stages(spec, pp)
        stages = [shard_model(spec, Layout(pp=pp), b) for b in blocks]
        # the first stage's embedding and the last stage's head are one matrix in the model, two copies here
        one_byte = Precision(weights="fp8")
        assert sum(stage_weight_bytes(stages, order, one_byte)) == total + spec.vocab_size * spec.hidden_size


def test_one_device_layout_is_the_single_device_engine(h100):
    spec = costsim.load_model("llama-3.1-8b")
    single = estimate(spec, h100, Deployment(), 32768, 8)
    laid = evaluate_layout(spec, h100, Deployment(), Layout(), 32768, batch=8)
    assert laid["tpot_s"] == pytest.approx(single["tpot_s"])
    assert laid["ttft_s"] == pytest.approx(single["ttft_s"])


def test_tensor_parallel_shards_heads_and_replicates_kv_beyond_their_count():
    spec = costsim.load_model("llama-3.1-8b")
    m = shard_model(spec, Layout(tp=8)).layers[0].mixer
    assert (m.num_heads, m.num_kv_heads) == (4, 1)
    qwen = costsim.load_model("qwen3-next-80b-a3b")
    gated = next(lay.mixer for lay in shard_model(qwen, Layout(tp=4)).layers if lay.mixer.family == "dense")
    assert (gated.num_heads, gated.num_kv_heads) == (4, 1)  # 2 KV heads replicated over 4 devices
    ds = shard_model(costsim.load_model("deepseek-v3"), Layout(tp=8, ep=8))
    moe = ds.layers[-1].ffn
    assert (moe.num_experts, moe.top_k) == (32, 1)


def test_more_devices_cut_latency_and_cache_per_device(h100):
    spec = costsim.load_model("llama-3.1-70b")
    dep = Deployment()
    tp2 = evaluate_layout(spec, h100, dep, Layout(tp=2), 8192, batch=1)
    tp8 = evaluate_layout(spec, h100, dep, Layout(tp=8), 8192, batch=1)
    assert tp8["tpot_s"] < tp2["tpot_s"] and tp8["ttft_s"] < tp2["ttft_s"]
    cp = evaluate_layout(spec, h100, dep, Layout(tp=8, cp=4), 1_000_000, batch=1)
    no_cp = evaluate_layout(spec, h100, dep, Layout(tp=8), 1_000_000, batch=1)
    assert cp["cache_bytes_per_sequence_per_device"] == pytest.approx(no_cp["cache_bytes_per_sequence_per_device"] / 4)
    assert cp["ttft_s"] < no_cp["ttft_s"] / 2


def test_collectives_by_formula(h100):
    gib = 2.0**30
    link_bw = 900e9 / 2 * comm.COMM_EFFICIENCY
    expected = 2 * 7 / 8 * gib / link_bw + 2 * 3 * comm.SCALE_UP_LATENCY_S
    assert float(comm.all_reduce(h100, 8, gib)) == pytest.approx(expected)
    assert float(comm.all_gather(h100, 8, gib)) == pytest.approx(7 / 8 * gib / link_bw + 3 * comm.SCALE_UP_LATENCY_S)
    # 16 devices leave the 8-GPU NVLink domain: the 50 GB/s network per GPU
    across = float(comm.all_reduce(h100, 16, gib))
    assert across == pytest.approx(2 * 15 / 16 * gib / (50e9 * comm.COMM_EFFICIENCY) + 2 * 4 * comm.SCALE_OUT_LATENCY_S)
    assert float(comm.all_reduce(h100, 1, gib)) == 0.0


@pytest.mark.parametrize(("layout", "message"), [
    ("tp=3", "not divisible by 3"),
    ("tp=16", "scale-up domain"),
    ("ep=2", "mixture-of-experts"),
    ("pp=200", "exceeds the model's 80 layers"),
])
def test_impossible_layouts_are_one_line_errors(capsys, layout, message):
    code = main(["estimate", "-m", "llama-3.1-70b", "--layout", layout])
    err = capsys.readouterr().err
    assert code == 2 and message in err and err.count("\n") == 1 and "Traceback" not in err


@pytest.mark.parametrize(("text", "message"), [("tp8", "key=value"), ("tp=x", "whole number"), ("tp=0", "at least 1"),
                                               ("zz=2", "key=value")])
def test_bad_layout_text(text, message):
    with pytest.raises(CostsimError, match=message):
        parse_layout(text)


def test_latency_target_nobody_meets_is_explained(capsys, tmp_path):
    out = tmp_path / "p.json"
    assert main(["plan", "-m", "llama-3.1-70b", "-c", "32k", "--tpot-ms", "0.5", "-f", "json", "-o", str(out)]) == 0
    res = json.loads(out.read_text())
    assert "chosen" not in res and "miss the latency targets" in res["none_because"]
    assert all("TPOT target" in r["reason"] or "does not fit" in r["reason"] or "divisible" in r["reason"]
               for r in res["rejected"])
    assert main(["plan", "-m", "llama-3.1-70b", "-c", "32k", "--tpot-ms", "0.5"]) == 0
    assert "no layout works" in capsys.readouterr().out


def test_plan_json_contract(tmp_path):
    out = tmp_path / "p.json"
    args = ["plan", "-m", "qwen3-235b-a22b", "-c", "128k", "--max-devices", "16", "-f", "json", "-o", str(out)]
    assert main(args) == 0
    res = json.loads(out.read_text())
    chosen = res["chosen"]
    assert {"devices", "layout", "tpot_s", "ttft_s", "usd_per_mtok_output"} <= set(chosen)
    assert set(chosen["layout"]) == {"tp", "ep", "pp", "cp", "dp"}
    assert chosen["usd_per_mtok_output"] == min(r["usd_per_mtok_output"] for r in res["feasible"])
    assert all(r["devices"] <= 16 for r in res["feasible"])
    assert res["rejected"] and all(r["reason"] for r in res["rejected"])


def test_a_10m_context_gets_devices_not_out_of_memory(h100):
    result = plan(costsim.load_model("llama-3.1-70b"), h100, Deployment(), 10_000_000, max_devices=72)
    assert result["chosen"]["devices"] >= 40  # 3.3 TB of KV cache alone
    assert result["chosen"]["layout"]["cp"] > 1 or result["chosen"]["layout"]["pp"] > 1


def test_disaggregated_pools_by_hand(h100):
    from costsim.serving.plan import disaggregated

    spec = costsim.load_model("llama-3.1-70b")
    dep = Deployment()
    r = disaggregated(spec, h100, dep, 32_000, 1_000, Layout(tp=4), Layout(tp=8))
    d, p = r["decode"], r["prefill"]
    decode = evaluate_layout(spec, h100, dep, Layout(tp=8), 33_000)
    assert (d["batch"], d["tpot_s"]) == (decode["batch"], decode["tpot_s"])
    # a decode replica finishes batch / (output x TPOT) requests per second; each needs one prefill
    assert d["requests_per_s"] == pytest.approx(d["batch"] / (1_000 * d["tpot_s"]))
    assert p["replicas_per_decode_replica"] == pytest.approx(d["requests_per_s"] * p["time_s"])
    # 32,000 tokens x 327,680 B leave 4 prefill GPUs for 8 decode GPUs: 12 > the 8-GPU domain, so the
    # 50 GB/s network per GPU (x 0.8), 4 senders in parallel
    assert r["kv_transfer_s"] == pytest.approx(32_000 * 327_680 / (4 * 40e9) + comm.SCALE_OUT_LATENCY_S)
    usd = 4 * 2.25 / 3600 * p["time_s"] + 8 * 2.25 / 3600 * 1_000 * d["tpot_s"] / d["batch"]
    assert r["usd_per_request"] == pytest.approx(usd)
    assert r["ttft_s"] == pytest.approx(p["time_s"] + r["kv_transfer_s"])
    # colocated: the decode replica prefills too, its decode stalled meanwhile
    assert r["colocated"]["usd_per_request"] > r["usd_per_request"]


def test_disaggregate_cli_and_errors(capsys, tmp_path):
    out = tmp_path / "d.json"
    assert main(["disaggregate", "-m", "llama-3.1-8b", "--prompt", "8k", "--output-tokens", "500",
                 "--prefill-layout", "tp=1", "--decode-layout", "tp=2", "-f", "json", "-o", str(out)]) == 0
    assert {"prefill", "decode", "kv_transfer_s", "usd_per_request", "colocated"} <= set(json.loads(out.read_text()))
    code = main(["disaggregate", "-m", "llama-3.1-70b", "--prompt", "1M", "--prefill-layout", "tp=1"])
    err = capsys.readouterr().err
    assert code == 2 and "cannot hold one prompt" in err and err.count("\n") == 1


def test_sweep_plan_auto_reaches_10m_tokens(tmp_path):
    out = tmp_path / "s.json"
    assert main(["sweep", "-m", "llama-3.1-70b", "-c", "32k..10M", "--points", "4", "--plan", "auto", "-f", "json",
                 "-o", str(out)]) == 0
    series = json.loads(out.read_text())["series"][0]
    assert all(series["fits_memory"])
    devices = series["devices"]
    assert devices[-1] >= 32  # 10M tokens of 70B KV (3.3 TB) need a rack
    assert "cp=" in series["layout"][-1] or "pp=" in series["layout"][-1]
    assert all(label != "none" for label in series["layout"])
    cost = series["usd_per_mtok_output"]
    assert cost == sorted(cost)  # longer contexts cost more per output token


def test_sweep_with_one_layout_matches_evaluate_layout(h100):
    from costsim.analysis.sweeps import sweep

    result = sweep(["llama-3.1-70b"], ["h100-sxm"], np.array([8192.0, 131072.0]), layout=Layout(tp=8), engine=None)
    s = result.series[0]
    for i, t in enumerate((8192, 131072)):
        one = evaluate_layout(costsim.load_model("llama-3.1-70b"), h100, Deployment(), Layout(tp=8), t)
        assert s["tpot_s"][i] == pytest.approx(one["tpot_s"]) and s["batch"][i] == one["batch"]
        assert s["ttft_s"][i] == pytest.approx(one["ttft_s"])
        assert s["usd_per_mtok_output"][i] == pytest.approx(one["usd_per_mtok_output"])


def test_compare_plan_auto_and_flag_errors(capsys):
    assert main(["compare", "-m", "deepseek-v3", "-H", "h100-sxm,b200", "--plan", "auto", "--weight-dtype", "fp8"]) == 0
    assert "x " in capsys.readouterr().out
    code = main(["compare", "-m", "llama-3.1-8b", "-H", "h100-sxm", "--plan", "best"])
    assert code == 2 and "only 'auto'" in capsys.readouterr().err
    code = main(["sweep", "--layout", "tp=2", "--plan", "auto"])
    assert code == 2 and "exclude each other" in capsys.readouterr().err


def test_collective_records_are_predicted_by_the_comm_model(h100):
    """microbench/collectives.py records (op `collective`) go through costsim validate like kernels."""
    from costsim.evidence.validate import predict_record, validate
    from costsim.spec.measurement import record_problem as _problem

    records = [{"op": "collective", "collective": c, "ranks": 8, "nodes": 1, "bytes": 2**30, "dtype": "bf16",
                "hardware": "h100-sxm", "gpu_name": "NVIDIA H100 80GB HBM3", "source": "nccl", "time_s": 5e-3}
               for c in ("all_reduce", "all_gather", "reduce_scatter", "all_to_all")]
    assert all(_problem(r) is None for r in records)
    assert predict_record(records[0], h100) == pytest.approx(float(comm.all_reduce(h100, 8, 2**30)))
    assert predict_record(records[3], h100) == pytest.approx(float(comm.all_to_all(h100, 8, 2**30)))
    two_nodes = dict(records[0], ranks=16, nodes=2)
    assert predict_record(two_nodes, h100) == pytest.approx(float(comm.all_reduce(h100, 16, 2**30, span=10**9)))
    summary = validate(records)["summary"]
    assert set(summary["by_family"]) == {f"collective/{c}:8" for c in
                                         ("all_reduce", "all_gather", "reduce_scatter", "all_to_all")}
    with pytest.raises(CostsimError, match="unknown collective"):
        predict_record(dict(records[0], collective="broadcast"), h100)
