"""Property tests of the engine (hypothesis): what physics demands of step times, memory and dollars,
over random presets, contexts, batches and hardware changes."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import costsim
from costsim.engine.timing import decode_step_time, prefill_time
from costsim.inputs.hardware import load_hardware
from costsim.serving.capacity import evaluate
from costsim.serving.layouts import evaluate_layout
from costsim.spec.deployment import Deployment
from costsim.spec.layout import Layout

PRESETS = ["llama-3.1-8b", "mistral-7b-v0.1", "gemma-3-27b", "deepseek-v3", "qwen3-next-80b-a3b",
           "kimi-linear-48b-a3b", "mamba2-2.7b", "minimax-m1", "gpt-oss-20b", "nemotron-h-8b"]
# Llama 4 Scout is left out: its chunked layers restart at every 8,192-token boundary, so decode there
# reads less cache than just before it (test_chunked_layers_restart_at_the_chunk_boundary)
SOFTMAX_ONLY = ["llama-3.1-8b", "qwen3-32b", "deepseek-v3", "gpt-oss-20b"]
HARDWARE = ["h100-sxm", "h200", "b200", "mi300x", "tpu-v6e", "l4"]
context = st.integers(min_value=1, max_value=4_000_000)
batch = st.integers(min_value=1, max_value=4096)
SPECS = {name: costsim.load_model(name) for name in set(PRESETS) | set(SOFTMAX_ONLY)}
PROFILES = {name: load_hardware(name) for name in HARDWARE}


def _scaled(hw, **factors):
    fields = {k: getattr(hw, k) * f for k, f in factors.items() if k != "dense_tflops"}
    if "dense_tflops" in factors:
        fields["dense_tflops"] = {k: v * factors["dense_tflops"] for k, v in hw.dense_tflops.items()}
    return hw.model_copy(update=fields)


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(SOFTMAX_ONLY), st.sampled_from(HARDWARE), context, context, batch)
def test_decode_never_gets_faster_with_more_context_for_softmax_models(name, hw, t1, t2, b):
    lo, hi = sorted((t1, t2))
    spec, profile = SPECS[name], PROFILES[hw]
    longer, shorter = decode_step_time(spec, profile, hi, b).total_s, decode_step_time(spec, profile, lo, b).total_s
    assert longer >= shorter * (1 - 1e-12)


def test_chunked_layers_restart_at_the_chunk_boundary():
    spec, profile = costsim.load_model("llama-4-scout"), PROFILES["h100-sxm"]
    before = decode_step_time(spec, profile, 8191, 64).by_class["attention_decode"]
    at = decode_step_time(spec, profile, 8192, 64).by_class["attention_decode"]
    after = decode_step_time(spec, profile, 16383, 64).by_class["attention_decode"]
    assert at < before < after  # the chunked layers read 8,191 tokens, then 0, then 8,191 again


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(PRESETS), st.sampled_from(HARDWARE), context, batch, batch)
def test_a_bigger_batch_never_makes_a_step_shorter(name, hw, t, b1, b2):
    lo, hi = sorted((b1, b2))
    spec, profile = SPECS[name], PROFILES[hw]
    bigger, smaller = decode_step_time(spec, profile, t, hi).total_s, decode_step_time(spec, profile, t, lo).total_s
    assert bigger >= smaller * (1 - 1e-12)


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(PRESETS), st.sampled_from(HARDWARE), context, batch,
       st.sampled_from(["hbm_bandwidth_tb_s", "dense_tflops", "vector_tflops"]))
def test_more_bandwidth_or_compute_never_slows_a_step(name, hw, t, b, what):
    spec, profile = SPECS[name], PROFILES[hw]
    faster = _scaled(profile, **{what: 2.0})
    assert decode_step_time(spec, faster, t, b).total_s <= decode_step_time(spec, profile, t, b).total_s * (1 + 1e-12)
    prompt = min(t, 200_000)
    assert prefill_time(spec, faster, prompt).total_s <= prefill_time(spec, profile, prompt).total_s * (1 + 1e-12)


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(PRESETS), st.sampled_from(HARDWARE), context, batch)
def test_every_time_class_is_finite_and_non_negative(name, hw, t, b):
    for step in (decode_step_time(SPECS[name], PROFILES[hw], t, b), prefill_time(SPECS[name], PROFILES[hw], t)):
        for klass, seconds in step.by_class.items():
            assert np.all(np.isfinite(seconds)) and np.all(np.asarray(seconds) >= 0), klass


@settings(max_examples=40, deadline=None)
@given(st.sampled_from(PRESETS), st.sampled_from(HARDWARE), st.lists(context, min_size=1, max_size=8))
def test_dollars_per_token_times_tokens_is_the_price_of_the_time(name, hw, contexts):
    """$/Mtok x tokens/s x 3600 / 1e6 = the device's price per hour, for output, input and cached input."""
    profile = PROFILES[hw]
    r = evaluate(SPECS[name], profile, Deployment(), np.asarray(contexts, dtype=float))
    np.testing.assert_allclose(r["usd_per_mtok_output"] * r["decode_tokens_per_s"] * 3600 / 1e6,
                               profile.usd_per_hour, rtol=1e-9)
    np.testing.assert_allclose(r["usd_per_mtok_input"] * r["prefill_tokens_per_s"] * 3600 / 1e6,
                               profile.usd_per_hour, rtol=1e-9)


@settings(max_examples=30, deadline=None)
@given(st.sampled_from(PRESETS), st.sampled_from(["h100-sxm", "b200", "mi300x"]),
       st.integers(min_value=1024, max_value=1_000_000), st.integers(min_value=1, max_value=64))
def test_a_one_device_layout_is_the_single_device_path(name, hw, t, b):
    spec, profile = SPECS[name], PROFILES[hw]
    laid = evaluate_layout(spec, profile, Deployment(), Layout(), t, batch=b)
    if not laid["fits_memory"]:  # the asked batch must fit, not one sequence
        assert not evaluate(spec, profile, Deployment(), float(t), b)["fits_memory"]
        return
    single = evaluate(spec, profile, Deployment(), float(t), b)
    assert laid["tpot_s"] == pytest.approx(float(single["tpot_s"]), rel=1e-9)
    assert laid["ttft_s"] == pytest.approx(float(single["ttft_s"]), rel=1e-9)


@settings(max_examples=30, deadline=None)
@given(st.sampled_from(["llama-3.1-70b", "qwen3-32b", "deepseek-v3"]), st.sampled_from([2, 4, 8]),
       st.integers(min_value=1024, max_value=2_000_000))
def test_more_tensor_parallel_devices_hold_less_per_device(name, tp, t):
    spec, profile = SPECS.get(name) or costsim.load_model(name), PROFILES["h100-sxm"]
    dep = Deployment(weights="fp8")
    small = evaluate_layout(spec, profile, dep, Layout(tp=tp // 2 if tp > 2 else 1), t, batch=1)
    big = evaluate_layout(spec, profile, dep, Layout(tp=tp), t, batch=1)
    assert big["weight_bytes_per_device"] < small["weight_bytes_per_device"]
    assert big["cache_bytes_per_sequence_per_device"] <= small["cache_bytes_per_sequence_per_device"]
