"""Elementwise kernels around each block (norms, rotary, activations, per-family extras): counts a
person can check against the architecture, and how the engine prices them."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

import costsim
from costsim.engine.timing import decode_step_time
from costsim.families.elementwise import ffn_kernels, mixer_kernels
from costsim.inputs.hardware import load_hardware

ROOT = Path(__file__).parent.parent


def test_llama_layer_kernels_by_hand():
    spec = costsim.load_model("llama-3.1-8b")
    layer = spec.layers[0]
    # add+norm reads x and residual, writes both: 4 x 4096; rotary reads and writes q (32 x 128) and k (8 x 128);
    # the new K and V (8 heads x 128 each) read and written into the cache
    assert mixer_kernels(layer.mixer, 4096) == [16384, 2 * 40 * 128, 4 * 8 * 128]
    # add+norm, then SiLU(gate) * up: read 2 x 14336, write 14336
    assert ffn_kernels(layer.ffn, 4096) == [16384, 3 * 14336]


def test_qwen3_next_layers_by_hand():
    spec = costsim.load_model("qwen3-next-80b-a3b")
    gdn = next(m for m, _ in spec.mixer_groups if m.family == "gated_delta")
    attn = next(m for m, _ in spec.mixer_groups if m.family == "dense")
    # conv over q, k (16 x 128 each) and v (32 x 128) = 8192 channels; gates 4 x 32; gated norm 3 x 4096
    assert mixer_kernels(gdn, 2048) == [8192, 2 * 8192, 4 * 32, 3 * 4096]
    # gated attention: rotary on 16 + 2 heads of 256, K and V of 2 heads into the cache, and the sigmoid output
    # gate over 16 x 256
    assert mixer_kernels(attn, 2048) == [8192, 2 * 18 * 256, 4 * 2 * 256, 3 * 16 * 256]
    moe = spec.layers[0].ffn
    # 10 routed experts of 512 and a shared one of 512; permute / un-permute 4 x top_k x hidden
    assert ffn_kernels(moe, 2048) == [8192, 3 * 10 * 512, 4 * 10 * 2048, 3 * 512]


def test_elementwise_time_is_latency_plus_streamed_bytes():
    hw = load_hardware("h100-sxm")
    spec = costsim.load_model("llama-3.1-8b")
    e = hw.efficiency
    per_token = 32 * (2 * 16384 + 2 * 40 * 128 + 4 * 8 * 128 + 3 * 14336) + 16384  # elements, bf16
    for batch in (1, 4096):
        got = decode_step_time(spec, hw, 8192, batch).by_class["elementwise"]
        streamed = batch * per_token * 2 / (3.35e12 * e.memory_max)
        assert got == pytest.approx((32 * 5 + 1) * e.elementwise_latency_s + streamed, rel=1e-6)


def test_kernel_gaps_follow_the_kernel_count():
    hw = load_hardware("h100-sxm")
    spec = costsim.load_model("llama-3.1-8b")
    overhead = decode_step_time(spec, hw, 8192, 1).by_class["overhead"]
    # per layer: q, k, v, o, gate, up, down GEMMs + attention + 5 elementwise; final norm and LM head
    assert overhead == pytest.approx((32 * 13 + 2) * hw.efficiency.graph_overhead_s)


def test_state_updates_use_the_scan_librarys_table_for_the_family():
    hw = load_hardware("h200")
    spec = costsim.load_model("qwen3-next-80b-a3b")
    with_table = decode_step_time(spec, hw, 8192, 256).by_class["state_update"]
    tables = {k: v for k, v in hw.efficiency.implementations.items() if k != "fla/linear_decode/gdn"}
    without = hw.model_copy(update={"efficiency": hw.efficiency.model_copy(update={"implementations": tables})})
    top_level = decode_step_time(spec, without, 8192, 256).by_class["state_update"]
    gdn, top = hw.efficiency.implementations["fla/linear_decode/gdn"]["state_update_max"], \
        hw.efficiency.state_update_max
    # state-bound at batch 256: time scales with 1 / efficiency
    assert float(with_table / top_level) == pytest.approx(top / gdn, rel=0.02)


def test_sweep_over_stacked_hardware_matches_one_by_one():
    from costsim.engine.stacked import StackedHardware

    spec = costsim.load_model("qwen3-next-80b-a3b")
    profiles = [load_hardware(n) for n in ("h100-sxm", "h200", "b200")]
    stacked = decode_step_time(spec, StackedHardware(profiles), np.array([4096.0, 65536.0]), 16).total_s
    for i, hw in enumerate(profiles):
        one = decode_step_time(spec, hw, np.array([4096.0, 65536.0]), 16).total_s
        np.testing.assert_allclose(stacked[i], one, rtol=1e-12)


def test_model_step_shapes_match_the_costsim_models():
    """microbench/model_step.py builds its models from model_shapes.py; the records name a costsim model.
    If the two disagreed, the end-to-end comparison would compare different models."""
    sys.path.insert(0, str(ROOT / "microbench"))
    try:
        from model_shapes import MODELS
    finally:
        sys.path.pop(0)
    from costsim.evidence.validate import model_for_record

    for name, m in MODELS.items():
        spec = model_for_record({"model": m["model"]})
        assert (spec.num_layers, spec.hidden_size, spec.vocab_size) == (m["layers"], m["hidden"], m["vocab"]), name
        ffn = {f.intermediate_size for f, _ in spec.ffn_groups}
        assert ffn == {m["intermediate"]}, name
        mixers = {mx.family: mx for mx, _ in spec.mixer_groups}
        if m["kind"] == "gqa":
            a = mixers["sliding" if m.get("window") else "dense"]
            assert (a.num_heads, a.num_kv_heads, a.head_dim) == (m["heads"], m["kv_heads"], m["head_dim"])
            assert getattr(a, "window", None) == m.get("window"), name
        elif m["kind"] == "hybrid_gdn":
            a, g = mixers["dense"], mixers["gated_delta"]
            assert (a.num_heads, a.num_kv_heads, a.head_dim, a.output_gate) == (
                m["heads"], m["kv_heads"], m["head_dim"], True)
            assert (g.num_k_heads, g.num_v_heads, g.head_k_dim, g.head_v_dim, g.conv_kernel) == (
                m["gdn_k_heads"], m["gdn_v_heads"], m["gdn_head_k"], m["gdn_head_v"], m["conv_kernel"])
            letters = "".join("G" if layer.mixer.family == "gated_delta" else "A" for layer in spec.layers)
            assert letters == (m["pattern"] * m["layers"])[: m["layers"]]
        elif m["kind"] == "hybrid_kda":
            a, g = mixers["mla"], mixers["gated_delta"]
            assert (g.variant, g.num_k_heads, g.num_v_heads, g.head_k_dim, g.head_v_dim, g.conv_kernel) == (
                "kda", m["kda_heads"], m["kda_heads"], m["kda_head_k"], m["kda_head_v"], m["conv_kernel"])
            assert (g.gate_low_rank or g.head_v_dim) == m["kda_head_v"]  # the harness's gate rank
            letters = "".join("K" if layer.mixer.family == "gated_delta" else "M" for layer in spec.layers)
            assert letters == m["pattern"]
            assert (a.num_heads, a.q_lora_rank, a.kv_lora_rank, a.qk_nope_head_dim, a.qk_rope_head_dim,
                    a.v_head_dim) == (m["heads"], m["q_lora_rank"], m["kv_lora_rank"], m["qk_nope_head_dim"],
                                      m["qk_rope_head_dim"], m["v_head_dim"])
        else:
            a = mixers["mla"]
            assert (a.num_heads, a.q_lora_rank, a.kv_lora_rank, a.qk_nope_head_dim, a.qk_rope_head_dim,
                    a.v_head_dim) == (m["heads"], m["q_lora_rank"], m["kv_lora_rank"], m["qk_nope_head_dim"],
                                      m["qk_rope_head_dim"], m["v_head_dim"])


def test_bench_stamps_the_invocation_into_each_header(tmp_path):
    import json

    from costsim.evidence.bench import _stamp_header

    f = tmp_path / "x.jsonl"
    f.write_text(json.dumps({"record": "header", "gpu_name": "G"}) + "\n" + json.dumps({"op": "copy"}) + "\n")
    _stamp_header(f, "costsim bench run --quick", "20260101T000000Z")
    head, body = (json.loads(x) for x in f.read_text().splitlines())
    assert head == {"record": "header", "gpu_name": "G", "invocation": "costsim bench run --quick",
                    "run_id": "20260101T000000Z"}
    assert body == {"op": "copy"}
