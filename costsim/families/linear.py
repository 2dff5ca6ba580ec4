"""Lightning / linear attention with decay (MiniMax-01, MiniMax-M1).

Per head a d_k x d_v state S replaces the KV cache: S_t = lambda S_{t-1} + k_t v_t^T, o_t = S_t^T q_t.
Decode: decay (d_k d_v multiplies) + outer product (2 d_k d_v) + read-out (2 d_k d_v) = 5 d_k d_v
FLOPs per head, all matrix-vector work on vector units; the state is read and written every step.
Chunked prefill with chunk C: per token and head 2 d_k d_v (Q S) + 2 d_k d_v (K^T V into the state)
+ 2 C d_k (Q K^T inside the chunk) + 2 C d_v (scores times V) — all matrix products.
"""

from __future__ import annotations

import numpy as np

from costsim.families import recurrent
from costsim.families.cost import NORM_FLOPS_PER_ELEMENT, ArrayLike, Cost, Matrix, as_array
from costsim.spec.dtypes import Precision
from costsim.spec.model import LinearAttention


def weight_matrices(m: LinearAttention, d: int) -> list[Matrix]:
    inner = m.num_heads * m.head_dim
    mats = [(d, 3 * inner)]
    if m.output_gate:
        mats.append((d, inner))
    return [*mats, (inner, d)]


def extra_params(m: LinearAttention, d: int) -> int:
    return m.num_heads * m.head_dim  # the RMSNorm on the attention output


def state_elements(m: LinearAttention) -> int:
    return m.num_heads * m.head_dim * m.head_dim


def cache_bytes(m: LinearAttention, t: ArrayLike, p: Precision) -> dict[str, np.ndarray]:
    t = as_array(t)
    return {"state": np.where(t > 0, state_elements(m) * p.state_bytes, 0.0)}


def _elementwise_per_token(m: LinearAttention) -> float:
    return m.num_heads * m.head_dim * (NORM_FLOPS_PER_ELEMENT + (1.0 if m.output_gate else 0.0))


def prefill(m: LinearAttention, d: int, n: ArrayLike, c: ArrayLike, batch: ArrayLike, p: Precision) -> Cost:
    h, dk = m.num_heads, m.head_dim
    return recurrent.prefill(
        weight_matrices(m, d), n, c, batch, p,
        matrix_per_token=h * (4.0 * dk * dk + 2.0 * m.chunk_size * (dk + dk)),
        vector_per_token=_elementwise_per_token(m),
        state_bytes=state_elements(m) * p.state_bytes,
        act_elements_per_token=4.0 * h * dk,  # q, k, v read, o written
    )


def decode(m: LinearAttention, d: int, t: ArrayLike, batch: ArrayLike, p: Precision) -> Cost:
    return recurrent.decode(
        weight_matrices(m, d), t, batch, p,
        vector_per_token=5.0 * state_elements(m) + _elementwise_per_token(m),
        state_bytes=state_elements(m) * p.state_bytes,
        act_elements_per_token=4.0 * m.num_heads * m.head_dim,
    )
