"""DeepSeek multi-head latent attention (MLA) and DeepSeek Sparse Attention (DSA, V3.2).

Per token and layer the cache holds one compressed latent (kv_lora_rank) and one rope key shared by
all heads. Two ways to compute attention over it:

- expanded (MHA) form: up-project every key's latent with kv_b into per-head keys and values, then
  ordinary attention: 2 n_h (d_nope + d_rope) + 2 n_h d_v FLOPs per (query, key) pair. Latents of a
  cached prefix must be up-projected again (2 d_c n_h (d_nope + d_v) FLOPs per cached token).
- absorbed (MQA) form: fold kv_b's key half into the query and its value half into the output, then
  attend the 576-wide latents directly: 2 n_h (2 d_c + d_rope) FLOPs per pair.

Prefill uses whichever form costs fewer FLOPs for that (n, c) — the expanded form for fresh prompts,
the absorbed form for a few new tokens on a long cached prefix — as SGLang and vLLM do. Decode always
uses the absorbed form. DSA adds a lightning indexer that scores every past token with FP8 keys, then
runs the same MLA over the top-k tokens only.
"""

from __future__ import annotations

import math
from functools import partial

import numpy as np

from costsim.families.cost import (
    SOFTMAX_FLOPS_PER_SCORE,
    ArrayLike,
    Cost,
    Matrix,
    as_array,
    full_pairs_before,
    gemm_cost,
    keys_at,
    window_pairs_before,
)
from costsim.families.kernel_tiles import padded_rows
from costsim.spec.dtypes import Precision
from costsim.spec.model import DSAttention, MLAttention

MLAMixer = MLAttention | DSAttention

FP8_SCALE_GROUP = 128  # FlashMLA and the V3.2 indexer keep one fp32 scale per 128 fp8 values
FP32_BYTES = 4.0
ROPE_BYTES_FP8_LAYOUT = 2.0  # FlashMLA's fp8 cache keeps the rope part in bf16


def _q_matrices(m: MLAMixer, d: int) -> list[Matrix]:
    q_out = m.num_heads * (m.qk_nope_head_dim + m.qk_rope_head_dim)
    if m.q_lora_rank is None:
        return [(d, q_out)]
    return [(d, m.q_lora_rank), (m.q_lora_rank, q_out)]


def _kv_b(m: MLAMixer) -> Matrix:
    return (m.kv_lora_rank, m.num_heads * (m.qk_nope_head_dim + m.v_head_dim))


def _kv_b_params(m: MLAMixer) -> float:
    rows, cols = _kv_b(m)
    return float(rows * cols)


def _indexer_matrices(m: MLAMixer, d: int) -> list[Matrix]:
    if not isinstance(m, DSAttention):
        return []
    q_in = m.q_lora_rank if m.q_lora_rank is not None else d
    return [(q_in, m.index_n_heads * m.index_head_dim), (d, m.index_head_dim), (d, m.index_n_heads)]


def _per_token_matrices(m: MLAMixer, d: int) -> list[Matrix]:
    """Projections applied once per new token in either form (everything but kv_b)."""
    kv_a = (d, m.kv_lora_rank + m.qk_rope_head_dim)
    o = (m.num_heads * m.v_head_dim, d)
    return [*_q_matrices(m, d), kv_a, o, *_indexer_matrices(m, d)]


def projection_matrices(m: MLAMixer, d: int) -> list[Matrix]:
    """The GEMMs run once per new token; kv_b is used inside the attention kernels instead."""
    return _per_token_matrices(m, d)


def weight_matrices(m: MLAMixer, d: int) -> list[Matrix]:
    return [*_per_token_matrices(m, d), _kv_b(m)]


def extra_params(m: MLAMixer, d: int) -> int:
    n = m.kv_lora_rank  # kv_a_layernorm
    if m.q_lora_rank is not None:
        n += m.q_lora_rank  # q_a_layernorm
    if isinstance(m, DSAttention):
        n += 2 * m.index_head_dim  # the indexer's key LayerNorm (weight and bias)
    return n


def latent_bytes_per_token(m: MLAMixer, p: Precision) -> float:
    if p.kv_cache == "fp8":
        scales = math.ceil(m.kv_lora_rank / FP8_SCALE_GROUP) * FP32_BYTES
        return m.kv_lora_rank * 1.0 + scales + m.qk_rope_head_dim * ROPE_BYTES_FP8_LAYOUT
    return (m.kv_lora_rank + m.qk_rope_head_dim) * p.kv_bytes


def indexer_bytes_per_token(m: MLAMixer) -> float:
    """FP8 key plus one fp32 scale per 128 values, whatever the KV dtype (132 B for V3.2)."""
    if not isinstance(m, DSAttention):
        return 0.0
    return m.index_head_dim * 1.0 + math.ceil(m.index_head_dim / FP8_SCALE_GROUP) * FP32_BYTES


def cache_bytes(m: MLAMixer, t: ArrayLike, p: Precision) -> dict[str, np.ndarray]:
    t = as_array(t)
    out = {"latent": t * latent_bytes_per_token(m, p)}
    if isinstance(m, DSAttention):
        out["indexer"] = t * indexer_bytes_per_token(m)
    return out


def _attended_pairs_before(m: MLAMixer):
    if isinstance(m, DSAttention):
        return partial(window_pairs_before, window=m.index_topk)  # min(i + 1, k) keys per query
    return full_pairs_before


def expanded_pair_flops(m: MLAMixer) -> float:
    return 2.0 * m.num_heads * (m.qk_nope_head_dim + m.qk_rope_head_dim) + 2.0 * m.num_heads * m.v_head_dim


def absorbed_pair_flops(m: MLAMixer) -> float:
    return 2.0 * m.num_heads * (2.0 * m.kv_lora_rank + m.qk_rope_head_dim)


def _indexer_core(m: MLAMixer, pairs_all: np.ndarray) -> Cost:
    if not isinstance(m, DSAttention):
        return Cost.zero()
    # FP8 dot products on the tensor cores, then relu, head weighting and top-k selection per score.
    return Cost.of(
        flops_matrix=2.0 * m.index_n_heads * m.index_head_dim * pairs_all,
        flops_vector=(3.0 * m.index_n_heads + 1.0) * pairs_all,
    )


def _absorbed(m: MLAMixer, pairs: np.ndarray, queries: np.ndarray, p: Precision) -> Cost:
    d_c, nh = m.kv_lora_rank, m.num_heads
    hq = nh * (m.qk_nope_head_dim + m.qk_rope_head_dim)
    return Cost.of(
        # query absorption (q_nope . W_UK) and output (o_latent . W_UV) use kv_b's weights per query
        flops_matrix=absorbed_pair_flops(m) * pairs + 2.0 * _kv_b_params(m) * queries,
        flops_vector=SOFTMAX_FLOPS_PER_SCORE * nh * pairs,
        bytes_activations=(hq + nh * d_c + nh * d_c + nh * m.v_head_dim) * queries * p.act_bytes,
    )


def _expanded(m: MLAMixer, pairs: np.ndarray, queries: np.ndarray, keys_expanded: np.ndarray,
              p: Precision) -> Cost:
    nh = m.num_heads
    kv_b_in, kv_b_out = _kv_b(m)
    hq = nh * (m.qk_nope_head_dim + m.qk_rope_head_dim)
    return Cost.of(
        flops_matrix=expanded_pair_flops(m) * pairs + 2.0 * kv_b_in * kv_b_out * keys_expanded,
        flops_vector=SOFTMAX_FLOPS_PER_SCORE * nh * pairs,
        bytes_activations=(hq + nh * m.v_head_dim) * queries * p.act_bytes
        + (kv_b_in + kv_b_out) * keys_expanded * p.act_bytes,
    )


def _pick_cheaper(a: Cost, b: Cost) -> Cost:
    use_a = a.flops <= b.flops
    picked = {k: np.where(use_a, x, b.as_dict()[k]) for k, x in a.as_dict().items()}
    return Cost(**picked)


def prefill(m: MLAMixer, d: int, n: ArrayLike, c: ArrayLike, batch: ArrayLike, p: Precision) -> Cost:
    n, c, batch = as_array(n), as_array(c), as_array(batch)
    before = _attended_pairs_before(m)
    pairs = before(c + n) - before(c)
    attention = _pick_cheaper(_expanded(m, pairs, n, c + n, p), _absorbed(m, pairs, n, p))
    indexer_pairs = full_pairs_before(c + n) - full_pairs_before(c)
    cache_tok = latent_bytes_per_token(m, p) + indexer_bytes_per_token(m)
    per_seq = attention + _indexer_core(m, indexer_pairs) + Cost.of(
        bytes_cache_read=c * cache_tok, bytes_cache_write=n * cache_tok
    )
    # kv_b's FLOPs are in the attention term (they depend on the form); here only its weight bytes
    gemms = gemm_cost(batch * n, _per_token_matrices(m, d), p.weight_bytes, p.act_bytes)
    kv_b_bytes = Cost.of(bytes_weights=np.where(batch * n > 0, _kv_b_params(m) * p.weight_bytes, 0.0))
    return per_seq.scaled(batch) + gemms + kv_b_bytes


def decode_tile_padding(m: MLAMixer, t: ArrayLike, batch: ArrayLike, tile_rows: int) -> Cost:
    """The tensor-core work a decode kernel spends on padding when it packs the query heads (rows of
    the one latent KV head) into tiles of `tile_rows`: FlashMLA's 64, so the 16 heads a GPU holds at
    tensor parallelism 8 cost as much compute as 64 (costsim/families/kernel_tiles.py)."""
    t, batch = as_array(t), as_array(batch)
    padded = padded_rows(m.num_heads, tile_rows)
    keys = keys_at(_attended_pairs_before(m), t)
    return Cost.of(flops_matrix=(padded - m.num_heads) / m.num_heads * absorbed_pair_flops(m) * keys * batch)


def decode(m: MLAMixer, d: int, t: ArrayLike, batch: ArrayLike, p: Precision) -> Cost:
    t, batch = as_array(t), as_array(batch)
    one = np.ones_like(t)
    keys = keys_at(_attended_pairs_before(m), t)
    index_keys = t + 1.0
    per_seq = _absorbed(m, keys, one, p) + _indexer_core(m, index_keys) + Cost.of(
        bytes_cache_read=keys * latent_bytes_per_token(m, p) + index_keys * indexer_bytes_per_token(m),
        bytes_cache_write=one * (latent_bytes_per_token(m, p) + indexer_bytes_per_token(m)),
    )
    gemms = gemm_cost(batch * one, _per_token_matrices(m, d), p.weight_bytes, p.act_bytes)
    kv_b_bytes = Cost.of(bytes_weights=one * _kv_b_params(m) * p.weight_bytes)
    return per_seq.scaled(batch) + gemms + kv_b_bytes
