"""Gated delta rule: Gated DeltaNet (Qwen3-Next) and Kimi Delta Attention (Kimi Linear).

State per value head: d_k x d_v. Update S_t = a_t (I - b_t k_t k_t^T) S_{t-1} + b_t k_t v_t^T with a
scalar decay a_t per head (GDN) or a per-channel diag(a_t) (KDA); o_t = S_t^T q_t.
Decode per value head: decay (d_k d_v) + S^T k (2 d_k d_v) + rank-1 update (2 d_k d_v) + read-out
(2 d_k d_v) = 7 d_k d_v FLOPs, on vector units; the state is read and written every step.
Chunked prefill (chunk C, the WY form used by flash-linear-attention), per chunk and value head:
A = (bK)K^T 2C^2 d_k, W = T(bK) 2C^2 d_k, U = T(bV) 2C^2 d_v, V' = U - W S 2C d_k d_v, Q S 2C d_k d_v,
Q K^T 2C^2 d_k, P V' 2C^2 d_v, S += K^T V' 2C d_k d_v, and the triangular solve for T (2C^3/3).
Per token: 6 d_k d_v + 6 C d_k + 4 C d_v on matrix units, plus 2C^2/3 for the solve.
A short causal convolution (kernel K) on q, k, v keeps K-1 past inputs per channel as conv state.
"""

from __future__ import annotations

import numpy as np

from costsim.families import recurrent
from costsim.families.cost import NORM_FLOPS_PER_ELEMENT, ArrayLike, Cost, Matrix, as_array
from costsim.spec.dtypes import Precision
from costsim.spec.model import GatedDeltaNet


def key_dim(m: GatedDeltaNet) -> int:
    return m.num_k_heads * m.head_k_dim


def value_dim(m: GatedDeltaNet) -> int:
    return m.num_v_heads * m.head_v_dim


def conv_dim(m: GatedDeltaNet) -> int:
    return 2 * key_dim(m) + value_dim(m)


def weight_matrices(m: GatedDeltaNet, d: int) -> list[Matrix]:
    if m.variant == "gdn":
        # Qwen3-Next: in_proj_qkvz (q, k, v, output gate z), in_proj_ba (beta, decay per v head)
        return [(d, 2 * key_dim(m) + 2 * value_dim(m)), (d, 2 * m.num_v_heads), (value_dim(m), d)]
    r = m.gate_low_rank or m.head_v_dim
    return [
        (d, key_dim(m)), (d, key_dim(m)), (d, value_dim(m)),  # q, k, v
        (d, r), (r, key_dim(m)),  # per-channel decay, low rank
        (d, m.num_v_heads),  # beta
        (d, r), (r, value_dim(m)),  # output gate, low rank
        (value_dim(m), d),
    ]


def extra_params(m: GatedDeltaNet, d: int) -> int:
    conv = conv_dim(m) * m.conv_kernel
    if m.variant == "gdn":
        return conv + 2 * m.num_v_heads + m.head_v_dim  # conv, dt_bias, A_log, gated norm
    return conv + m.num_v_heads + key_dim(m) + m.head_v_dim  # conv, A_log, dt_bias per channel, norm


def state_elements(m: GatedDeltaNet) -> int:
    return m.num_v_heads * m.head_k_dim * m.head_v_dim


def conv_state_elements(m: GatedDeltaNet) -> int:
    return (m.conv_kernel - 1) * conv_dim(m)


def cache_bytes(m: GatedDeltaNet, t: ArrayLike, p: Precision) -> dict[str, np.ndarray]:
    t = as_array(t)
    held = t > 0
    return {
        "state": np.where(held, state_elements(m) * p.state_bytes, 0.0),
        "conv": np.where(held, conv_state_elements(m) * p.act_bytes, 0.0),
    }


def _state_bytes(m: GatedDeltaNet, p: Precision) -> float:
    return state_elements(m) * p.state_bytes + conv_state_elements(m) * p.act_bytes


def _elementwise_per_token(m: GatedDeltaNet) -> float:
    """Short conv (2K per channel), l2-norm of q and k, gated RMSNorm on the output."""
    conv = 2.0 * m.conv_kernel * conv_dim(m)
    return conv + NORM_FLOPS_PER_ELEMENT * (2 * key_dim(m) + value_dim(m)) + value_dim(m)


def prefill_flops_per_token(m: GatedDeltaNet) -> tuple[float, float]:
    """(matrix, vector) FLOPs per token for the chunked scan, summed over value heads."""
    dk, dv, c, h = m.head_k_dim, m.head_v_dim, m.chunk_size, m.num_v_heads
    matrix = h * (6.0 * dk * dv + 6.0 * c * dk + 4.0 * c * dv)
    # triangular solve, plus applying the decay inside the chunk (per channel for KDA)
    vector = h * (2.0 * c * c / 3.0 + (c * dk if m.variant == "kda" else c))
    return matrix, vector


def prefill(m: GatedDeltaNet, d: int, n: ArrayLike, c: ArrayLike, batch: ArrayLike, p: Precision) -> Cost:
    matrix, vector = prefill_flops_per_token(m)
    return recurrent.prefill(
        weight_matrices(m, d), n, c, batch, p,
        matrix_per_token=matrix,
        vector_per_token=vector + _elementwise_per_token(m),
        state_bytes=_state_bytes(m, p),
        act_elements_per_token=conv_dim(m) + value_dim(m),
    )


def decode(m: GatedDeltaNet, d: int, t: ArrayLike, batch: ArrayLike, p: Precision) -> Cost:
    return recurrent.decode(
        weight_matrices(m, d), t, batch, p,
        vector_per_token=7.0 * state_elements(m) + _elementwise_per_token(m),
        state_bytes=_state_bytes(m, p),
        act_elements_per_token=conv_dim(m) + value_dim(m),
    )
