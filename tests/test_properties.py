"""Property tests over random contexts, batches and prompt splits (hypothesis)."""

from __future__ import annotations

import numpy as np
from conftest import HIDDEN, MIXERS, RECURRENT, SOFTMAX
from hypothesis import given, settings
from hypothesis import strategies as st

from costsim.families import ffn, mla, module_for
from costsim.families import model_costs as mc
from costsim.families.cost import full_pairs_before
from costsim.spec.dtypes import Precision
from costsim.spec.model import DenseFFN, Layer, ModelSpec, MoEFFN

P = Precision()
ADDITIVE = [name for name in MIXERS if name not in ("mla", "dsa")]
tokens = st.integers(min_value=0, max_value=2_000_000)
positive = st.integers(min_value=1, max_value=2_000_000)


@settings(max_examples=60, deadline=None)
@given(n=positive, c=tokens, name=st.sampled_from(ADDITIVE))
def test_prefill_flops_are_additive(n, c, name):
    """prefill(n after c) + prefill(c) == prefill(c + n): no pair or token counted twice or lost."""
    m = MIXERS[name]
    f = module_for(m)
    split = f.prefill(m, HIDDEN, n, c, 1, P).flops + f.prefill(m, HIDDEN, c, 0, 1, P).flops
    whole = f.prefill(m, HIDDEN, c + n, 0, 1, P).flops
    np.testing.assert_allclose(split, whole, rtol=1e-9)


@settings(max_examples=40, deadline=None)
@given(n=positive, c=positive)
def test_mla_split_prefill_costs_exactly_the_reexpansion(n, c):
    """In expanded form, continuing after c cached tokens must up-project their latents again:
    the only excess over one whole prefill is 2 * c * |kv_b| FLOPs."""
    m = MIXERS["mla"]
    kv_b = m.kv_lora_rank * m.num_heads * (m.qk_nope_head_dim + m.v_head_dim)

    def expanded(n_, c_):
        pairs = full_pairs_before(np.float64(c_ + n_)) - full_pairs_before(np.float64(c_))
        return mla._expanded(m, pairs, np.float64(n_), np.float64(c_ + n_), P).flops

    excess = expanded(n, c) + expanded(c, 0) - expanded(n + c, 0)
    np.testing.assert_allclose(excess, 2.0 * c * kv_b, rtol=1e-9)


@settings(max_examples=40, deadline=None)
@given(n=positive, c=tokens)
def test_mla_prefill_picks_the_cheaper_form(n, c):
    m = MIXERS["mla"]
    pairs = full_pairs_before(np.float64(c + n)) - full_pairs_before(np.float64(c))
    expanded = mla._expanded(m, pairs, np.float64(n), np.float64(c + n), P).flops
    absorbed = mla._absorbed(m, pairs, np.float64(n), P).flops
    gemms = 2.0 * n * sum(i * o for i, o in mla._per_token_matrices(m, HIDDEN))
    chosen = mla.prefill(m, HIDDEN, n, c, 1, P).flops - gemms
    np.testing.assert_allclose(chosen, min(expanded, absorbed), rtol=1e-9)
    if c == 0:
        assert expanded <= absorbed  # a fresh prompt always runs expanded


@settings(max_examples=60, deadline=None)
@given(t1=tokens, t2=tokens, name=st.sampled_from(SOFTMAX))
def test_softmax_cache_never_shrinks(t1, t2, name):
    m = MIXERS[name]
    lo, hi = sorted((t1, t2))
    assert sum(module_for(m).cache_bytes(m, lo, P).values()) <= sum(module_for(m).cache_bytes(m, hi, P).values())


@settings(max_examples=60, deadline=None)
@given(t=positive, name=st.sampled_from(RECURRENT))
def test_recurrent_state_is_constant(t, name):
    m = MIXERS[name]
    assert sum(module_for(m).cache_bytes(m, t, P).values()) == sum(module_for(m).cache_bytes(m, 1, P).values())


@settings(max_examples=60, deadline=None)
@given(t=tokens, batch=st.integers(1, 512), name=st.sampled_from(sorted(MIXERS)))
def test_costs_are_non_negative_and_finite(t, batch, name):
    m = MIXERS[name]
    for cost in (module_for(m).decode(m, HIDDEN, t, batch, P), module_for(m).prefill(m, HIDDEN, 1 + t % 9000, t,
                                                                                           batch, P)):
        for value in cost.as_dict().values():
            assert np.all(np.isfinite(value)) and np.all(value >= 0)


@settings(max_examples=40, deadline=None)
@given(b1=st.integers(1, 4096), b2=st.integers(1, 4096))
def test_moe_touched_experts_monotone_and_bounded(b1, b2):
    lo, hi = sorted((b1, b2))
    u_lo, u_hi = ffn.expected_experts_touched(128, 8, lo), ffn.expected_experts_touched(128, 8, hi)
    assert 8 - 1e-9 <= u_lo <= u_hi <= 128 + 1e-9


def _hybrid() -> ModelSpec:
    dense_ffn = DenseFFN(intermediate_size=11008)
    moe = MoEFFN(num_experts=64, top_k=6, expert_intermediate_size=1408, shared_intermediate_size=2816)
    mixers = [MIXERS["gdn"], MIXERS["gdn"], MIXERS["gdn"], MIXERS["dense"], MIXERS["mamba2"], MIXERS["sliding"],
              MIXERS["mla"], MIXERS["kda"]]
    layers = [Layer(mixer=mx, ffn=dense_ffn if i % 2 else moe, norm_params=2 * HIDDEN) for i, mx in enumerate(mixers)]
    return ModelSpec(name="hybrid", hidden_size=HIDDEN, vocab_size=32000, layers=layers, final_norm_params=HIDDEN)


@settings(max_examples=30, deadline=None)
@given(t=tokens, batch=st.integers(1, 256))
def test_hybrid_cost_is_the_sum_of_its_layers(t, batch):
    spec = _hybrid()
    model = mc.decode_cost(spec, t, batch, P).total
    by_layer = sum(
        (module_for(layer.mixer).decode(layer.mixer, HIDDEN, t, batch, P).flops
         + ffn.cost(layer.ffn, HIDDEN, batch, P).flops) for layer in spec.layers
    )
    head = 2.0 * HIDDEN * 32000 * batch
    np.testing.assert_allclose(model.flops, by_layer + head, rtol=1e-12)
    cache = sum(sum(module_for(layer.mixer).cache_bytes(layer.mixer, t, P).values()) for layer in spec.layers)
    np.testing.assert_allclose(mc.cache_bytes(spec, t, P), cache, rtol=1e-12)


@settings(max_examples=30, deadline=None)
@given(n=positive, c=tokens)
def test_hybrid_model_prefill_additive_without_mla(n, c):
    layers = [lay for lay in _hybrid().layers if lay.mixer.family != "mla"]
    spec = _hybrid().model_copy(update={"layers": layers})
    split = mc.prefill_cost(spec, n, c, 1, P).total.flops + mc.prefill_cost(spec, c, 0, 1, P).total.flops
    whole = mc.prefill_cost(spec, n + c, 0, 1, P).total.flops
    head = 2.0 * HIDDEN * 32000  # each prefill call pays the LM head once for its last token
    np.testing.assert_allclose(split - (head if c > 0 else 0.0), whole, rtol=1e-9)
