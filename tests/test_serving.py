"""Serving engines: profiles, KV pools checked by hand, the step loop's invariants, queueing, speculative
decoding, the frontier, the CLI contract and its one-line refusals."""

from __future__ import annotations

import json

import numpy as np
import pytest

import costsim
from costsim.cli import main
from costsim.errors import CostsimError
from costsim.inputs.engines import engine_names, load_engine
from costsim.inputs.hardware import hardware_names, load_hardware
from costsim.inputs.models import preset_names
from costsim.serving.frontier import pareto
from costsim.serving.steps import StepModel
from costsim.serving.workload import Workload, _erlang_c, capacity, run
from costsim.spec.deployment import Deployment
from costsim.spec.layout import Layout

CONTRACT = {"model", "hardware", "engine", "devices", "layout", "isl", "osl", "concurrency", "batch", "fits_memory",
            "output_tokens_per_s", "output_tokens_per_s_per_device", "total_tokens_per_s", "tokens_per_s_per_user",
            "requests_per_s", "ttft_s", "tpot_s", "itl_s", "usd_per_mtok_output", "usd_per_mtok_input"}


def step_model(model="llama-3.1-8b", hw="h100-sxm", engine="vllm", layout=None, **dep):
    return StepModel(costsim.load_model(model), load_hardware(hw), Deployment(**dep), layout or Layout(),
                     load_engine(engine))


def test_every_bundled_engine_loads_with_sources():
    assert set(engine_names()) >= {"vllm", "sglang", "trtllm", "pytorch-eager"}
    for name in engine_names():
        engine = load_engine(name)
        assert engine.sources and engine.version
        assert engine.scheduler.max_batched_tokens >= 1


def test_vllm_pool_for_llama_70b_fp8_on_one_h100_by_hand():
    """docs/serving.md: capacity 81,559 MiB x 0.9, less 0.5 GiB runtime, the 8,192-token profiling forward
    (8192 x (4 x 8192 + 2 x 28672) x 2 B = 1,476,395,008 B) and 70,553,706,496 B of fp8 weights."""
    m = step_model("llama-3.1-70b", weights="fp8", kv_cache="fp8")
    pool = 81_559 * 2**20 * 0.9 - 2**29 - 8192 * (4 * 8192 + 2 * 28672) * 2 - 70_553_706_496
    per_sequence = 80 * 8 * 128 * 2 * 1 * (1024 + 512)  # fp8 K and V, 80 layers, 8 KV heads, average context
    assert capacity(m, 1024, 1024) == int(pool // per_sequence) == 17


def test_trtllm_pool_is_a_fraction_of_what_is_free_after_weights():
    m = step_model("llama-3.1-70b", engine="trtllm", weights="fp8", kv_cache="fp8")
    # its sampler holds fp32 logits and probabilities of max_batch_size 2,048 rows: 2,101,346,304 B, more
    # than the 8,192-token forward's 1,476,395,008 B, so that is the activation peak
    free = 81_559 * 2**20 - 70_553_706_496 - 2**29 - 2 * 2048 * 128_256 * 4
    per_sequence = 80 * 8 * 128 * 2 * 2048  # reserved for the whole prompt + output
    assert capacity(m, 1024, 1024) == int(free * 0.9 // per_sequence) == 33


def test_mixed_step_with_no_chunk_is_a_decode_step():
    m = step_model()
    b = np.array([1.0, 8.0, 64.0, 256.0])
    np.testing.assert_allclose(m.mixed(4096.0, b, 0.0), m.decode(4096.0, b), rtol=0.02)
    # a chunk costs extra, more for a longer chunk
    assert np.all(m.mixed(4096.0, b, 512.0) > m.decode(4096.0, b))
    assert np.all(m.mixed(4096.0, b, 2048.0) > m.mixed(4096.0, b, 512.0))


def test_concurrency_trades_per_user_speed_for_throughput():
    m = step_model()
    res = run(m, Workload(1024, 1024, concurrency=np.array([1, 4, 16, 64, 256])))
    assert np.all(np.diff(res["output_tokens_per_s"]) > 0)
    assert np.all(np.diff(res["tokens_per_s_per_user"]) < 0)
    assert np.all(np.diff(res["tpot_s"]["mean"]) > 0)
    # output tokens per second = requests per second x output length, at every level
    np.testing.assert_allclose(res["output_tokens_per_s"], res["requests_per_s"] * 1024)


def test_users_beyond_capacity_wait_by_littles_law():
    m = step_model("llama-3.1-70b", weights="fp8", kv_cache="fp8")
    cap = capacity(m, 1024, 1024)
    res = run(m, Workload(1024, 1024, concurrency=np.array([cap, 3 * cap])))
    assert res["batch"][0] == res["batch"][1] == cap
    extra = res["ttft_s"]["mean"][1] - res["ttft_s"]["mean"][0]
    # (the wait behind other prompts differs by the (N - 1) / N share of contending users: microseconds)
    assert extra == pytest.approx(2 * cap / res["requests_per_s"][1], rel=1e-4)


def test_erlang_c_by_hand():
    # one server: an arrival waits with probability rho; two servers at load 1: 1/3
    np.testing.assert_allclose(_erlang_c(np.array([1.0, 1.0, 2.0]), np.array([0.3, 0.8, 1.0])), [0.3, 0.8, 1 / 3])


def test_request_rate_queues_and_refuses_past_saturation():
    rows = costsim.serve("llama-3.1-8b", "h100-sxm", request_rate="0.5,4,6,100")
    ok = [r for r in rows if not r.get("saturated")]
    assert len(ok) == 3 and rows[-1]["saturated"]
    for r in ok:  # below saturation the engine keeps up: output = rate x osl
        assert r["output_tokens_per_s"] == pytest.approx(r["request_rate"] * 1024, rel=1e-3)
    assert ok[0]["ttft_s"]["mean"] < ok[1]["ttft_s"]["mean"] < ok[2]["ttft_s"]["mean"]
    assert rows[-1]["ttft_s"] is None and "saturated" in rows[-1]["reason"]


def test_offline_runs_at_capacity():
    m = step_model()
    cap = capacity(m, 1000, 1000)
    res = run(m, Workload(1000, 1000, offline_requests=3000))
    assert res["batch"][0] == cap


def test_speculation_cuts_tpot_at_low_batch():
    plain = costsim.serve("llama-3.1-8b", "h200", concurrency="1")[0]
    eagle = costsim.serve("llama-3.1-8b", "h200", concurrency="1", speculative="eagle3")[0]
    ratio = plain["tpot_s"]["mean"] / eagle["tpot_s"]["mean"]
    assert 1.5 < ratio < 2.6  # at most tau = 2.6 tokens per step, less the drafter's and verifier's extra time


def test_a_prompt_past_the_step_budget_needs_chunked_prefill():
    vllm = costsim.serve("llama-3.1-8b", "h100-sxm", concurrency="8", isl="16k", osl="256")[0]
    trt = costsim.serve("llama-3.1-8b", "h100-sxm", concurrency="8", isl="16k", osl="256", engine="trtllm")[0]
    assert vllm["tpot_s"] is not None and vllm["itl_s"]["p99"] > vllm["itl_s"]["p50"]  # chunks slow some steps
    assert trt["tpot_s"] is None and "chunked prefill" in trt["reason"]


def test_does_not_fit_names_the_devices_it_needs():
    row = costsim.serve("llama-3.1-405b", "h100-sxm", concurrency="1")[0]
    assert row["fits_memory"] is False and row["tpot_s"] is None and row["usd_per_mtok_output"] is None
    assert "needs at least" in row["reason"]
    # and that layout does serve it
    need = int(row["reason"].split("needs at least ")[1].split()[0])
    layout = row["reason"].split("(")[-1].rstrip(")")
    assert costsim.serve("llama-3.1-405b", "h100-sxm", concurrency="1", layout=layout)[0]["fits_memory"]
    assert need == int(np.prod([int(p.split("=")[1]) for p in layout.split(",")]))


@pytest.mark.parametrize("model", preset_names())
def test_every_preset_serves_or_refuses_on_every_hardware(model):
    for hw in hardware_names():
        for engine in ("vllm", "trtllm"):
            try:
                rows = costsim.serve(model, hw, engine=engine, concurrency="8")
            except CostsimError as exc:
                assert "\n" not in str(exc) and "--engine" in str(exc)
                continue
            row = rows[0]
            assert set(row) >= CONTRACT
            if row["fits_memory"]:
                assert row["output_tokens_per_s"] > 0 and np.isfinite(row["tpot_s"]["p99"])
            else:
                assert row["reason"] and row["ttft_s"] is None


def test_frontier_is_a_pareto_set():
    users = np.array([10.0, 20.0, 30.0, 15.0, 25.0])
    per_device = np.array([100.0, 80.0, 50.0, 70.0, 40.0])
    assert pareto(users, per_device).tolist() == [True, True, True, False, False]
    res = costsim.frontier("llama-3.1-8b", "h100-sxm,h200", max_devices=2)
    for hw in res["hardware"]:
        pts = hw["frontier"]
        assert len(pts) >= 3
        u = [p["tokens_per_s_per_user"] for p in pts]
        d = [p["output_tokens_per_s_per_device"] for p in pts]
        assert u == sorted(u) and d == sorted(d, reverse=True)  # faster users cost device throughput


def test_frontier_refuses_an_engine_that_does_not_run_on_the_device():
    res = costsim.frontier("llama-3.1-8b", "mi300x", engine="trtllm", max_devices=1)
    assert res["hardware"][0]["frontier"] == [] and "amd" in res["hardware"][0]["reason"]


def test_serve_json_contract(capsys):
    assert main(["serve", "-m", "llama-3.1-8b", "-H", "h200", "--concurrency", "1,64", "-f", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 2 and all(set(r) >= CONTRACT for r in rows)
    assert all(set(r["ttft_s"]) == {"mean", "p50", "p99"} for r in rows)
    assert rows[0]["evidence"]["attention"][0]["status"] in ("fitted", "stand-in", "unfitted")


@pytest.mark.parametrize("args, field", [
    (["--concurrency", "0"], "--concurrency"),
    (["--concurrency", "abc"], "--concurrency"),
    (["--concurrency", "1e12"], "--concurrency"),
    (["--concurrency", "8", "--request-rate", "1"], "exactly one"),
    (["--request-rate", "-1"], "--request-rate"),
    (["--engine", "nosuch"], "--engine"),
    (["--speculative", "medusa"], "--speculative"),
    (["--isl", "1e15"], "--isl"),
    (["--isl", "90M", "--osl", "20M"], "--isl/--osl"),
    (["--offline", "--requests", "0"], "--requests"),
    (["-H", "mi300x", "--engine", "trtllm"], "--engine"),
    (["-m", "jamba-v0.1", "--engine", "trtllm"], "mamba"),
])
def test_bad_serve_input_is_one_line_and_exit_2(capsys, args, field):
    assert main(["serve", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert field in err and "\n" not in err and "Traceback" not in err


def test_estimate_with_an_engine_uses_its_pool_and_steps():
    r = costsim.estimate("llama-3.1-8b", "h100-sxm", context="32k", engine="vllm")
    pool = 81_559 * 2**20 * 0.9 - 2**29 - 2 * 1024 * 128_256 * 4 - 8_030_261_248 * 2  # the sampler is the peak
    assert r["engine"] == "vllm" and r["max_batch"] == int(pool // (131_072 * 32_000)) == 14
    eager = costsim.estimate("llama-3.1-8b", "h100-sxm", context="32k", batch=8, engine="pytorch-eager")
    vllm8 = costsim.estimate("llama-3.1-8b", "h100-sxm", context="32k", batch=8, engine="vllm")
    assert eager["tpot_s"] > 1.5 * vllm8["tpot_s"]  # unfused, ungraphed and host-bound
    too_many = costsim.estimate("llama-3.1-8b", "h100-sxm", context="32k", engine="vllm", batch=100,
                                single_device=True)
    assert too_many["fits_memory"] is False and too_many["tpot_s"] is None and "does not fit" in too_many["reason"]


def test_plan_sweep_and_compare_take_an_engine():
    plan = costsim.plan("llama-3.1-70b", "h100-sxm", context="8k", weights="fp8", kv_cache="fp8", engine="trtllm")
    assert plan["engine"] == "trtllm" and plan["chosen"]["batch"] <= 2048
    single = costsim.estimate("llama-3.1-70b", "h100-sxm", context="8k", weights="fp8", kv_cache="fp8",
                              engine="trtllm")
    one = next(r for r in plan["feasible"] + plan["rejected"] if r["devices"] == 1 and r["label"] == "single")
    assert one["max_batch"] == single["max_batch"]  # the layout path and estimate apply the same pool
    from costsim.analysis.sweeps import compare

    rows = compare("llama-3.1-8b", ["h100-sxm", "mi300x"], 8000, engine=load_engine("trtllm"))
    amd = next(r for r in rows if r["hardware"] == "mi300x")
    assert not amd["fits_memory"] and "amd" in amd["reason"] and not np.isfinite(amd["usd_per_mtok_output"])
    nvidia = next(r for r in rows if r["hardware"] == "h100-sxm")
    plain = next(r for r in compare("llama-3.1-8b", ["h100-sxm"], 8000) if r["hardware"] == "h100-sxm")
    assert nvidia["max_batch"] != plain["max_batch"]  # TensorRT-LLM's pool, not the 10% reserve


def test_plan_refuses_an_engine_on_the_wrong_vendor(capsys):
    assert main(["plan", "-m", "llama-3.1-8b", "-H", "mi300x", "--engine", "trtllm"]) == 2
    assert "amd" in capsys.readouterr().err


def test_scenario_and_report_take_an_engine(capsys, tmp_path):
    assert main(["scenario", "run", "chat", "-m", "llama-3.1-8b", "-H", "h200", "--engine", "sglang",
                 "--samples", "20", "-f", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows[0]["fits_memory"] and rows[0]["usd_per_task"] > 0
    assert main(["scenario", "run", "chat", "-m", "llama-3.1-8b", "-H", "mi300x", "--engine", "trtllm"]) == 2
    assert "amd" in capsys.readouterr().err
    out = tmp_path / "r.html"
    assert main(["report", "-m", "llama-3.1-8b", "-H", "h100-sxm", "--engine", "trtllm", "--points", "6",
                 "--samples", "10", "--out", str(out)]) == 0
    assert "TensorRT-LLM" in out.read_text()


def test_an_eager_step_waits_on_the_host_issuing_every_kernel_and_library_call():
    """Llama-3.1-8B eager, counted by hand per layer: q, k, v, o GEMMs, the attention call, an 8-op
    RMSNorm, 12 rotary ops and the cache write (26); gate, up, down GEMMs, an 8-op norm, SiLU and mul (13);
    then the final norm (8) and the LM head: 32 x 39 + 9 = 1,257 kernels. At batch 1 the GPU's work is far
    shorter than the host's, so the step is 1,257 x 20 us + 32 attention calls x 40 us = 26.42 ms."""
    from dataclasses import replace

    from costsim.engine.timing import decode_step_time, prefill_time
    from costsim.serving.engines import kernel_plan

    spec, hw = costsim.load_model("llama-3.1-8b"), load_hardware("h200")
    base = kernel_plan(load_engine("pytorch-eager"))
    plan = replace(base, host_per_kernel_s=20e-6, host_attention_call_s=40e-6)
    step = decode_step_time(spec, hw, 1024, 1, plan=plan)
    assert float(step.total_s) == pytest.approx(1257 * 20e-6 + 32 * 40e-6, rel=1e-9)
    assert float(step.by_class["host_bound"]) > 0
    # a Gated DeltaNet layer's chunked prefill is fla's 9 kernels and one library call, not one kernel
    hybrid = costsim.load_model("qwen3-next-80b-a3b")
    gdn_layers = sum(c for m, c in hybrid.mixer_groups if m.family == "gated_delta")
    # a host so slow that the step is the host's time alone
    one = replace(base, recurrent_prefill_kernels=1, host_recurrent_prefill_call_s=0.0, host_per_kernel_s=1.0)
    nine = replace(base, recurrent_prefill_kernels=9, host_recurrent_prefill_call_s=0.5, host_per_kernel_s=1.0)
    gap = float(prefill_time(hybrid, hw, 512, plan=nine).total_s - prefill_time(hybrid, hw, 512, plan=one).total_s)
    assert gdn_layers == 36 and gap == pytest.approx(36 * 8 * 1.0 + 36 * 0.5, rel=1e-9)


def test_the_cli_times_under_vllm_unless_told_none(capsys):
    """Every timing command defaults to --engine vllm, as the Python functions do; --engine none is costsim's
    own kernel list, engine=None in Python."""
    assert main(["estimate", "-m", "llama-3.1-8b", "-H", "h100-sxm", "-c", "8k", "--batch", "8", "-f", "json"]) == 0
    default = json.loads(capsys.readouterr().out)
    assert default["engine"] == "vllm"
    assert default["tpot_s"] == pytest.approx(costsim.estimate("llama-3.1-8b", "h100-sxm", context="8k", batch=8,
                                                               engine="vllm")["tpot_s"], rel=1e-12)
    assert main(["estimate", "-m", "llama-3.1-8b", "-H", "h100-sxm", "-c", "8k", "--batch", "8", "--engine", "none",
                 "-f", "json"]) == 0
    plain = json.loads(capsys.readouterr().out)
    assert "engine" not in plain
    assert plain["tpot_s"] == pytest.approx(costsim.estimate("llama-3.1-8b", "h100-sxm", context="8k",
                                                             batch=8, engine=None)["tpot_s"], rel=1e-12)
    assert plain["tpot_s"] < default["tpot_s"]  # the engine's CPU time and attention tables come on top
    for command in ("serve", "frontier"):
        assert main([command, "--engine", "none"]) == 2
        err = capsys.readouterr().err
        assert "--engine" in err and "\n" not in err.strip()


def test_a_request_under_an_engine_is_its_prefill_then_its_decodes():
    r = costsim.estimate("llama-3.1-8b", "h200", prompt="20k", output_tokens="2k", engine="vllm")
    model = step_model("llama-3.1-8b", "h200")
    engine = load_engine("vllm")
    assert r["batch"] == r["max_batch"] == int(model.max_sequences(22_000.0))
    assert r["tpot_s"] == pytest.approx(float(model.decode(21_000.0, r["batch"])), rel=1e-12)
    assert r["ttft_s"] == pytest.approx(float(model.prefill(20_000.0)) + engine.overheads.ttft_floor_s, rel=1e-12)
    assert r["request_latency_s"] == pytest.approx(r["ttft_s"] + 2_000 * r["tpot_s"], rel=1e-12)
    assert r["usd_per_request"] == pytest.approx(
        (20_000 * r["usd_per_mtok_input"] + 2_000 * r["usd_per_mtok_output"]) / 1e6, rel=1e-12)
    crowded = costsim.estimate("llama-3.1-8b", "h200", prompt="20k", output_tokens="2k", engine="vllm", batch=500)
    assert crowded["fits_memory"] is False and crowded["request_latency_s"] is None
    assert "does not fit" in crowded["reason"]
