"""Native Sparse Attention (NSA, arXiv 2502.11089): three branches over one GQA cache.

Each query attends (1) compressed keys, one per block of l tokens taken every s tokens, (2) the
raw tokens of the top-n selected blocks of size l', and (3) a sliding window of w tokens; a gate
(d -> 3 per head) mixes the branches. The cache keeps the raw KV plus the compressed KV.
Compression here is mean pooling over each block (no weights), as in the fla-org reference
implementation; the paper's learned MLP would add a few weights and FLOPs per block.
"""

from __future__ import annotations

import numpy as np

from costsim.families import dense
from costsim.families.cost import (
    SOFTMAX_FLOPS_PER_SCORE,
    ArrayLike,
    Cost,
    Matrix,
    as_array,
    gemm_cost,
    strided_blocks_before,
    window_pairs_before,
)
from costsim.spec.dtypes import Precision
from costsim.spec.model import NSAttention

BRANCHES = 3


def weight_matrices(m: NSAttention, d: int) -> list[Matrix]:
    return [*dense.weight_matrices(m, d), (d, BRANCHES * m.num_heads)]


def extra_params(m: NSAttention, d: int) -> int:
    return dense.extra_params(m, d)


def compressed_blocks(m: NSAttention, t: ArrayLike) -> np.ndarray:
    t = as_array(t)
    return np.where(t >= m.compress_block, np.floor((t - m.compress_block) / m.compress_stride) + 1.0, 0.0)


def _kv_tok(m: NSAttention, p: Precision) -> float:
    return 2.0 * m.num_kv_heads * m.head_dim * p.kv_bytes


def cache_bytes(m: NSAttention, t: ArrayLike, p: Precision) -> dict[str, np.ndarray]:
    t = as_array(t)
    return {"kv": t * _kv_tok(m, p), "compressed_kv": compressed_blocks(m, t) * _kv_tok(m, p)}


def selected_tokens_cap(m: NSAttention) -> int:
    return m.select_count * m.select_block


def pairs_before(m: NSAttention, q: np.ndarray) -> np.ndarray:
    """(query, key) pairs over all three branches for queries 0..q-1."""
    return (
        strided_blocks_before(q, m.compress_block, m.compress_stride)
        + window_pairs_before(q, selected_tokens_cap(m))
        + window_pairs_before(q, m.window)
    )


def _core(m: NSAttention, pairs: np.ndarray, queries: np.ndarray, p: Precision) -> Cost:
    hq = m.num_heads * m.head_dim
    return Cost.of(
        flops_matrix=4.0 * hq * pairs,
        flops_vector=SOFTMAX_FLOPS_PER_SCORE * m.num_heads * pairs + BRANCHES * hq * queries,
        bytes_activations=2.0 * hq * queries * p.act_bytes,
    )


def prefill(m: NSAttention, d: int, n: ArrayLike, c: ArrayLike, batch: ArrayLike, p: Precision) -> Cost:
    n, c, batch = as_array(n), as_array(c), as_array(batch)
    pairs = pairs_before(m, c + n) - pairs_before(m, c)
    new_blocks = compressed_blocks(m, c + n) - compressed_blocks(m, c)
    kv = _kv_tok(m, p)
    pooling = Cost.of(flops_vector=new_blocks * m.compress_block * 2.0 * m.num_kv_heads * m.head_dim)
    per_seq = _core(m, pairs, n, p) + pooling + Cost.of(
        bytes_cache_read=(c + compressed_blocks(m, c)) * kv, bytes_cache_write=(n + new_blocks) * kv
    )
    return per_seq.scaled(batch) + gemm_cost(batch * n, weight_matrices(m, d), p.weight_bytes, p.act_bytes)


def decode(m: NSAttention, d: int, t: ArrayLike, batch: ArrayLike, p: Precision) -> Cost:
    """Reads the compressed keys, the selected blocks and the window (overlaps counted twice, as
    the three kernels read them independently)."""
    t, batch = as_array(t), as_array(batch)
    one = np.ones_like(t)
    keys = pairs_before(m, t + 1.0) - pairs_before(m, t)
    kv = _kv_tok(m, p)
    new_blocks = compressed_blocks(m, t + 1.0) - compressed_blocks(m, t)
    per_seq = _core(m, keys, one, p) + Cost.of(
        flops_vector=new_blocks * m.compress_block * 2.0 * m.num_kv_heads * m.head_dim,
        bytes_cache_read=keys * kv,
        bytes_cache_write=(one + new_blocks) * kv,
    )
    return per_seq.scaled(batch) + gemm_cost(batch * one, weight_matrices(m, d), p.weight_bytes, p.act_bytes)
