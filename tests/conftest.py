"""Shared test fixtures: one representative mixer per family, built from real model shapes."""

from __future__ import annotations

import pytest

from costsim.spec.model import (
    ChunkedAttention,
    DenseAttention,
    DSAttention,
    GatedDeltaNet,
    LinearAttention,
    Mamba2Mixer,
    MambaMixer,
    MLAttention,
    NSAttention,
    SlidingAttention,
)

HIDDEN = 4096

MIXERS = {
    "dense": DenseAttention(num_heads=64, num_kv_heads=8, head_dim=128),
    "sliding": SlidingAttention(num_heads=32, num_kv_heads=8, head_dim=128, window=4096),
    "chunked": ChunkedAttention(num_heads=40, num_kv_heads=8, head_dim=128, chunk=8192),
    "mla": MLAttention(num_heads=128, q_lora_rank=1536, kv_lora_rank=512, qk_nope_head_dim=128,
                       qk_rope_head_dim=64, v_head_dim=128),
    "dsa": DSAttention(num_heads=128, q_lora_rank=1536, kv_lora_rank=512, qk_nope_head_dim=128,
                       qk_rope_head_dim=64, v_head_dim=128, index_n_heads=64, index_head_dim=128, index_topk=2048),
    "nsa": NSAttention(num_heads=64, num_kv_heads=4, head_dim=128),
    "linear": LinearAttention(num_heads=64, head_dim=128),
    "gdn": GatedDeltaNet(variant="gdn", num_k_heads=16, num_v_heads=32, head_k_dim=128, head_v_dim=128),
    "kda": GatedDeltaNet(variant="kda", num_k_heads=32, num_v_heads=32, head_k_dim=128, head_v_dim=128),
    "mamba2": Mamba2Mixer(num_heads=128, head_dim=64, d_state=128, n_groups=8),
    "mamba": MambaMixer(d_inner=8192, d_state=16, dt_rank=256, inner_layernorms=True),
}

SOFTMAX = ["dense", "sliding", "chunked", "mla", "dsa", "nsa"]
RECURRENT = ["linear", "gdn", "kda", "mamba2", "mamba"]


@pytest.fixture(params=sorted(MIXERS))
def any_mixer(request):
    return request.param, MIXERS[request.param]
