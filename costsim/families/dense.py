"""Softmax attention over a KV cache: full (MHA/GQA/MQA), sliding window, and chunked masks.

The three differ only in which keys a query sees (the mask) and how many tokens the cache must
keep; projections, per-pair FLOPs and per-token KV bytes are shared.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import numpy as np

from costsim.families.cost import (
    SOFTMAX_FLOPS_PER_SCORE,
    ArrayLike,
    Cost,
    Matrix,
    as_array,
    chunk_pairs_before,
    full_pairs_before,
    gemm_cost,
    keys_at,
    window_pairs_before,
)
from costsim.spec.dtypes import Precision
from costsim.spec.model import ChunkedAttention, DenseAttention, SlidingAttention

SoftmaxMixer = DenseAttention | SlidingAttention | ChunkedAttention
PairsBefore = Callable[[np.ndarray], np.ndarray]


def weight_matrices(m: SoftmaxMixer, d: int) -> list[Matrix]:
    q_out = m.num_heads * m.head_dim * (2 if m.output_gate else 1)
    kv_out = m.num_kv_heads * m.head_dim
    return [(d, q_out), (d, kv_out), (d, kv_out), (m.num_heads * m.head_dim, d)]


def extra_params(m: SoftmaxMixer, d: int) -> int:
    n = 0
    if m.qkv_bias:
        n += m.num_heads * m.head_dim * (2 if m.output_gate else 1) + 2 * m.num_kv_heads * m.head_dim
    if m.o_bias:
        n += d
    if m.qk_norm == "rms":
        n += 2 * m.head_dim
    if m.sinks:
        n += m.num_heads
    return n


def pairs_before(m: SoftmaxMixer) -> PairsBefore:
    if m.family == "sliding":
        return partial(window_pairs_before, window=m.window)
    if m.family == "chunked":
        return partial(chunk_pairs_before, chunk=m.chunk)
    return full_pairs_before


def stored_tokens(m: SoftmaxMixer, t: ArrayLike) -> np.ndarray:
    """Tokens the cache must hold at context t. A chunked layer reserves the whole chunk: the next
    tokens of the current chunk attend everything since the chunk began."""
    t = as_array(t)
    if m.family == "sliding":
        return np.minimum(t, m.window)
    if m.family == "chunked":
        return np.minimum(t, m.chunk)
    return t


def kv_bytes_per_token(m: SoftmaxMixer, p: Precision) -> float:
    return 2.0 * m.num_kv_heads * m.head_dim * p.kv_bytes


def cache_bytes(m: SoftmaxMixer, t: ArrayLike, p: Precision) -> dict[str, np.ndarray]:
    return {"kv": stored_tokens(m, t) * kv_bytes_per_token(m, p)}


def _core_cost(m: SoftmaxMixer, pairs: np.ndarray, tokens: np.ndarray, p: Precision) -> Cost:
    """QK^T and PV over `pairs` (query, key) pairs, softmax on each score, optional output gate."""
    hq = m.num_heads * m.head_dim
    return Cost.of(
        flops_matrix=4.0 * hq * pairs,
        flops_vector=SOFTMAX_FLOPS_PER_SCORE * m.num_heads * pairs + (hq if m.output_gate else 0) * tokens,
        bytes_activations=2.0 * hq * tokens * p.act_bytes,  # the kernel reads Q and writes O
    )


def prefill(m: SoftmaxMixer, d: int, n: ArrayLike, c: ArrayLike, batch: ArrayLike, p: Precision) -> Cost:
    n, c, batch = as_array(n), as_array(c), as_array(batch)
    before = pairs_before(m)
    pairs = before(c + n) - before(c)
    kv_tok = kv_bytes_per_token(m, p)
    per_seq = _core_cost(m, pairs, n, p) + Cost.of(
        bytes_cache_read=stored_tokens(m, c) * kv_tok, bytes_cache_write=n * kv_tok
    )
    return per_seq.scaled(batch) + gemm_cost(batch * n, weight_matrices(m, d), p.weight_bytes, p.act_bytes)


def decode(m: SoftmaxMixer, d: int, t: ArrayLike, batch: ArrayLike, p: Precision) -> Cost:
    """One new token per sequence at context t; the kernel reads every key it attends (the new
    token's own K/V included, written first) and writes one token of KV."""
    t, batch = as_array(t), as_array(batch)
    keys = keys_at(pairs_before(m), t)
    kv_tok = kv_bytes_per_token(m, p)
    one = np.ones_like(t)
    per_seq = _core_cost(m, keys, one, p) + Cost.of(bytes_cache_read=keys * kv_tok, bytes_cache_write=one * kv_tok)
    return per_seq.scaled(batch) + gemm_cost(batch * one, weight_matrices(m, d), p.weight_bytes, p.act_bytes)
