"""Per-family numbers a person can check by hand, and the invariants each family must obey."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import HIDDEN, MIXERS, RECURRENT, SOFTMAX

from costsim.families import ffn, mixer_params, mla, module_for
from costsim.spec.dtypes import Precision
from costsim.spec.model import DenseAttention, DenseFFN, MoEFFN

BF16 = Precision()
T = np.array([1.0, 100.0, 4096.0, 65536.0, 1e6, 1e7])


def cache(name, t, p=BF16):
    m = MIXERS[name]
    return sum(module_for(m).cache_bytes(m, t, p).values())


# --- hand-checkable numbers -------------------------------------------------------------------


def test_gqa_kv_bytes_per_token():
    # Llama-3.1-70B layer: 2 (K and V) x 8 kv heads x 128 x 2 bytes = 4096 B per token
    np.testing.assert_array_equal(cache("dense", np.array([1.0, 1000.0])), [4096.0, 4_096_000.0])


def test_mla_latent_is_576_elements():
    assert cache("mla", 1.0) == 576 * 2
    # FlashMLA fp8 layout: 512 fp8 + 4 fp32 scales + 64 bf16 rope = 656 B
    assert cache("mla", 1.0, Precision(kv_cache="fp8")) == 656


def test_dsa_adds_132_byte_indexer_key():
    assert cache("dsa", 1.0, Precision(kv_cache="fp8")) == 656 + 132


def test_mla_pair_flops_deepseek_v3():
    m = MIXERS["mla"]
    assert mla.expanded_pair_flops(m) == 81_920  # 2*128*(128+64) + 2*128*128
    assert mla.absorbed_pair_flops(m) == 278_528  # 2*128*(2*512 + 64)


def test_dense_decode_flops_at_t():
    m = MIXERS["dense"]
    d = HIDDEN
    cost = module_for(m).decode(m, d, np.float64(999), 1, BF16)
    projections = 2 * (d * 64 * 128 + 2 * d * 8 * 128 + 64 * 128 * d)
    attention = 4 * 64 * 128 * 1000  # new token attends 999 cached + itself
    assert cost.flops_matrix == projections + attention
    assert cost.bytes_cache_read == 1000 * 4096
    assert cost.bytes_cache_write == 4096


def test_dense_prefill_is_causal_pairs():
    m = MIXERS["dense"]
    n = 1000.0
    cost = module_for(m).prefill(m, HIDDEN, n, 0.0, 1, BF16)
    gemm = 2 * n * (HIDDEN * 64 * 128 * 2 + 2 * HIDDEN * 8 * 128)
    assert cost.flops_matrix == gemm + 4 * 64 * 128 * n * (n + 1) / 2


def test_linear_state_is_h_dk_dv():
    # MiniMax lightning layer: 64 heads x 128 x 128 fp32 = 4 MiB
    assert cache("linear", 5.0, Precision(state="fp32")) == 64 * 128 * 128 * 4


def test_gdn_state_follows_value_heads():
    # Qwen3-Next GDN layer: 32 v-heads x 128 x 128 fp32 + conv (4-1) x (2*16*128 + 32*128) bf16
    assert cache("gdn", 10.0) == 32 * 128 * 128 * 4 + 3 * 8192 * 2


def test_mamba2_state():
    # Nemotron-H: 128 heads x 64 x 128 fp32 + conv 3 x (8192 + 2*8*128) bf16
    assert cache("mamba2", 10.0) == 128 * 64 * 128 * 4 + 3 * (8192 + 2048) * 2


def test_moe_expected_experts():
    assert ffn.expected_experts_touched(256, 8, 1) == pytest.approx(8)
    assert ffn.expected_experts_touched(256, 8, 10_000) == pytest.approx(256)
    # two tokens: 8 + 8 * (1 - 8/256) distinct on average
    assert ffn.expected_experts_touched(256, 8, 2) == pytest.approx(8 + 8 * (1 - 8 / 256))


def test_moe_decode_weight_bytes_follow_touched_experts():
    moe = MoEFFN(num_experts=256, top_k=8, expert_intermediate_size=2048, shared_intermediate_size=2048)
    d = 7168
    expert = 3 * d * 2048
    one = ffn.cost(moe, d, 1, BF16)
    assert one.bytes_weights == pytest.approx((d * 256 + expert + 8 * expert) * 2)
    assert one.flops_matrix == pytest.approx(2 * (d * 256 + expert + 8 * expert))


def test_dense_ffn_params():
    assert ffn.params(DenseFFN(intermediate_size=14336), 4096) == 3 * 4096 * 14336
    assert ffn.params(DenseFFN(intermediate_size=21504, activation="relu2"), 4096) == 2 * 4096 * 21504


def test_gqa_params_llama8b_layer():
    m = DenseAttention(num_heads=32, num_kv_heads=8, head_dim=128)
    assert mixer_params(m, 4096) == 4096 * 4096 * 2 + 2 * 4096 * 1024


# --- invariants -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", RECURRENT)
def test_recurrent_state_does_not_grow(name):
    values = cache(name, T)
    assert np.all(values == values[0]) and values[0] > 0


@pytest.mark.parametrize(("name", "cap"), [("sliding", 4096), ("chunked", 8192)])
def test_window_caps_the_cache(name, cap):
    kv_per_token = cache(name, 1.0)
    assert cache(name, 1e7) == cap * kv_per_token
    assert cache(name, 100.0) == 100 * kv_per_token


@pytest.mark.parametrize("name", ["dense", "mla", "dsa", "nsa"])
def test_unbounded_caches_grow_linearly(name):
    values = cache(name, T)
    assert np.all(np.diff(values) > 0)


@pytest.mark.parametrize("name", ["dense", "sliding", "mla", "dsa", "nsa"])
def test_softmax_decode_cost_rises_with_context(name):
    m = MIXERS[name]
    c = module_for(m).decode(m, HIDDEN, T, 1, BF16)
    assert np.all(np.diff(c.flops) >= 0) and np.all(np.diff(c.bytes_total) >= 0)


@pytest.mark.parametrize("name", ["dense", "mla", "nsa"])
def test_unbounded_decode_rises_strictly(name):
    m = MIXERS[name]
    c = module_for(m).decode(m, HIDDEN, T, 1, BF16)
    assert np.all(np.diff(c.flops) > 0)


@pytest.mark.parametrize("name", RECURRENT)
def test_recurrent_decode_cost_is_constant(name):
    m = MIXERS[name]
    c = module_for(m).decode(m, HIDDEN, T, 1, BF16)
    assert np.all(c.flops == c.flops[0]) and np.all(c.bytes_total == c.bytes_total[0])


def test_everything_broadcasts(any_mixer):
    _, m = any_mixer
    t = np.array([[1024.0], [65536.0]])
    batch = np.array([1.0, 8.0, 64.0])
    c = module_for(m).decode(m, HIDDEN, t, batch, BF16)
    assert c.flops.shape == (2, 3)
    n = np.array([1.0, 512.0, 8192.0])
    p = module_for(m).prefill(m, HIDDEN, n, t, 1.0, BF16)
    assert p.flops.shape == (2, 3)
    assert np.all(p.flops > 0)


def test_batch_scales_flops_not_weights(any_mixer):
    _, m = any_mixer
    one = module_for(m).decode(m, HIDDEN, 4096.0, 1.0, BF16)
    many = module_for(m).decode(m, HIDDEN, 4096.0, 16.0, BF16)
    assert many.flops == pytest.approx(16 * one.flops)
    assert many.bytes_weights == pytest.approx(one.bytes_weights)
    assert many.bytes_cache_read == pytest.approx(16 * one.bytes_cache_read)


def test_chunked_decode_is_a_sawtooth():
    m = MIXERS["chunked"]
    t = np.array([8190.0, 8191.0, 8192.0, 8193.0])
    keys = module_for(m).decode(m, HIDDEN, t, 1, BF16).bytes_cache_read / module_for(m).kv_bytes_per_token(m, BF16)
    np.testing.assert_array_equal(keys, [8191, 8192, 1, 2])


@pytest.mark.parametrize("name", SOFTMAX)
def test_decode_equals_one_token_prefill_flops(name):
    m = MIXERS[name]
    t = np.array([0.0, 1.0, 31.0, 4095.0, 100_000.0])
    dec = module_for(m).decode(m, HIDDEN, t, 1.0, BF16)
    pre = module_for(m).prefill(m, HIDDEN, 1.0, t, 1.0, BF16)
    if name in ("mla", "dsa"):
        # decode always uses the absorbed form; a one-token prefill may pick it too, never costs more
        assert np.all(pre.flops <= dec.flops + 1e-6 * dec.flops)
    else:
        np.testing.assert_allclose(pre.flops_matrix, dec.flops_matrix, rtol=1e-12)
