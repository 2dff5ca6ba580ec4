"""The presets against numbers published by the model makers or computed independently
(models/SOURCES.md); none of these is read back from costsim."""

from __future__ import annotations

import numpy as np
import pytest

import costsim
from costsim.analysis import inspection
from costsim.inputs.models import preset_names
from costsim.spec.dtypes import Precision

BF16 = Precision(state="fp32")

EXACT_PARAMS = {
    "llama-3.1-8b": 8_030_261_248,
    "llama-3.1-70b": 70_553_706_496,  # 80 x 855,654,400 + 2 x 128256 x 8192 + 8192, by hand
    "gpt-oss-120b": 116_829_156_672,
    "nemotron-h-8b": 8_100_852_736,
    "qwen3-next-80b-a3b": 79_674_391_296,
    "mistral-7b-v0.1": 7_241_732_096,  # the commonly quoted exact count
    "mixtral-8x7b": 46_702_792_704,
}

APPROX_PARAMS = {  # total, in billions, from architectures.md ([D] = independently derived)
    "llama-3.1-405b": 405.85,
    "qwen3-32b": 32.76,
    "qwen3-235b-a22b": 235.09,
    "deepseek-v3": 671.03,
    "kimi-linear-48b-a3b": 49.12,
    "minimax-text-01": 456.09,
    "gemma-3-27b": 27.01,
    "mixtral-8x7b": 46.70,
    "llama-4-scout": 107.8,
    "jamba-v0.1": 51.6,
    "mamba2-2.7b": 2.70,
}

APPROX_ACTIVE = {  # active per token including embedding and LM head, billions
    "qwen3-235b-a22b": 22.19,
    "deepseek-v3": 37.55,
    "kimi-linear-48b-a3b": 3.48,
    "mixtral-8x7b": 12.88,
    "llama-4-scout": 17.17,
    "jamba-v0.1": 12.1,
}


def test_every_listed_preset_exists():
    names = set(preset_names())
    missing = (set(EXACT_PARAMS) | set(APPROX_PARAMS)) - names
    assert not missing


@pytest.mark.parametrize(("name", "expected"), sorted(EXACT_PARAMS.items()))
def test_exact_parameter_counts(name, expected):
    assert costsim.param_counts(costsim.load_model(name)).total == expected


def test_qwen3_next_active_exact():
    assert costsim.param_counts(costsim.load_model("qwen3-next-80b-a3b")).active == 3_874_929_408


@pytest.mark.parametrize(("name", "billions"), sorted(APPROX_PARAMS.items()))
def test_parameter_counts_within_half_percent(name, billions):
    total = costsim.param_counts(costsim.load_model(name)).total
    assert total / 1e9 == pytest.approx(billions, rel=0.005)


@pytest.mark.parametrize(("name", "billions"), sorted(APPROX_ACTIVE.items()))
def test_active_parameter_counts(name, billions):
    active = costsim.param_counts(costsim.load_model(name)).active
    assert active / 1e9 == pytest.approx(billions, rel=0.005)


def test_minimax_m2_close_to_published_230b():
    # MiniMax publishes 230B total / 10B active, rounded and including its MTP modules, which we
    # leave out; the main model is 228.7B.
    counts = costsim.param_counts(costsim.load_model("minimax-m2"))
    assert counts.total / 1e9 == pytest.approx(230, rel=0.01)
    assert counts.active_without_embedding / 1e9 == pytest.approx(10, rel=0.02)


def test_minimax_text_01_active_without_embedding():
    counts = costsim.param_counts(costsim.load_model("minimax-text-01"))
    assert counts.active_without_embedding / 1e9 == pytest.approx(45.94, rel=0.005)


# --- cache per token, bf16 KV (architectures.md, "Cache per sequence") ------------------------

GROWING_KV_PER_TOKEN = {
    "llama-3.1-8b": 131_072,
    "llama-3.1-70b": 327_680,
    "deepseek-v3": 70_272,  # 61 x 576 x 2
    "qwen3-next-80b-a3b": 24_576,  # 12 full-attention layers x 2 x 2 x 256 x 2
    "kimi-linear-48b-a3b": 8_064,  # 7 MLA layers x 1152
    "minimax-text-01": 40_960,  # 10 softmax layers
    "gpt-oss-120b": 36_864,  # 18 full layers
    "gemma-3-27b": 81_920,  # 10 global layers
    "jamba-v0.1": 16_384,  # 4 attention layers
    "nemotron-h-8b": 16_384,
    "mamba2-2.7b": 0,
}


@pytest.mark.parametrize(("name", "expected"), sorted(GROWING_KV_PER_TOKEN.items()))
def test_growing_cache_per_token(name, expected):
    spec = costsim.load_model(name)
    assert inspection.growing_cache_bytes_per_token(spec, BF16) == expected


def test_deepseek_fp8_cache_per_token():
    spec = costsim.load_model("deepseek-v3")
    assert inspection.growing_cache_bytes_per_token(spec, Precision(kv_cache="fp8")) == 40_016  # 61 x 656
    v32 = costsim.load_model("deepseek-v3.2-exp")
    assert inspection.growing_cache_bytes_per_token(v32, Precision(kv_cache="fp8")) == 48_068  # 61 x (656 + 132)


def test_gemma3_cache_formula():
    spec = costsim.load_model("gemma-3-27b")
    t = np.array([1.0, 512.0, 1024.0, 1025.0, 32768.0, 131072.0])
    expected = 8192 * (10 * t + 52 * np.minimum(t, 1024))
    np.testing.assert_array_equal(costsim.cache_bytes(spec, t), expected)


def test_mistral_cache_capped_at_window():
    spec = costsim.load_model("mistral-7b-v0.1")
    np.testing.assert_array_equal(costsim.cache_bytes(spec, [1000, 4096, 32768, 1e6]),
                                  131_072 * np.array([1000, 4096, 4096, 4096]))


def test_qwen3_next_kv_plus_constant_state():
    spec = costsim.load_model("qwen3-next-80b-a3b")
    by_kind = costsim.cache_bytes_by_kind(spec, np.array([1000.0, 1_000_000.0]), BF16)
    np.testing.assert_array_equal(by_kind["dense"], 24_576 * np.array([1000, 1_000_000]))
    state = by_kind["gated_delta"]
    assert state[0] == state[1]
    # 36 GDN layers x (32 x 128 x 128 fp32 + 3 x 8192 conv channels bf16) = 73.7 MiB
    assert state[0] == 36 * (32 * 128 * 128 * 4 + 3 * 8192 * 2)


def test_minimax_lightning_state_280_mib():
    spec = costsim.load_model("minimax-text-01")
    assert costsim.cache_bytes_by_kind(spec, 10, BF16)["linear"] == 70 * 64 * 128 * 128 * 4


def test_layer_patterns():
    assert costsim.load_model("qwen3-next-80b-a3b").layer_pattern() == "GGGA" * 12
    assert costsim.load_model("gemma-3-27b").layer_pattern() == ("SSSSSA" * 11)[:62]
    assert costsim.load_model("gpt-oss-120b").layer_pattern() == "SA" * 18
    assert costsim.load_model("llama-4-scout").layer_pattern() == "CCCA" * 12
    assert costsim.load_model("jamba-v0.1").layer_pattern() == "1111A111" * 4
    kimi = costsim.load_model("kimi-linear-48b-a3b").layer_pattern()
    assert [i + 1 for i, ch in enumerate(kimi) if ch == "M"] == [4, 8, 12, 16, 20, 24, 27]
    assert costsim.load_model("minimax-text-01").layer_pattern() == "LLLLLLLA" * 10


def test_nemotron_h_blocks():
    pattern = costsim.load_model("nemotron-h-8b").layer_pattern()
    assert pattern == "M-M-M-M*-M-M-M-M-M*-M-M-M-M-M*-M-M-M-M-M*-M-M-M-M-M-".replace("M", "2").replace("*", "A")


def test_hypothetical_hybrid_file():
    spec = costsim.load_model("llama-3.1-70b-gdn-3to1")
    assert spec.layer_pattern() == "GGGA" * 20
    base = costsim.load_model("llama-3.1-70b")
    assert [lay.ffn for lay in spec.layers] == [lay.ffn for lay in base.layers]
    # a quarter of the KV cache remains
    assert inspection.growing_cache_bytes_per_token(spec, BF16) == 327_680 // 4
