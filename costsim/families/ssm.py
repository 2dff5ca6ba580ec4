"""State-space mixers: Mamba-2 (SSD; Mamba2, Nemotron-H) and Mamba-1 (Jamba).

Mamba-2: H heads of P channels (d_inner = H P), state N per channel, B and C shared by G groups.
Decode per layer: decay (H P N) + input outer product (2 H P N) + read-out C.h (2 H P N) = 5 H P N
FLOPs on vector units; state H P N read and written every step. Chunked SSD prefill with chunk Q,
per token (Mamba-2 paper, sec. 6): intra-chunk C B^T (2 G Q N), masked scores times x (2 Q P per
head), chunk states B^T x (2 P N per head) and their read-out C.h (2 P N per head):
H (4 P N + 2 Q P) + 2 G Q N on matrix units.
Mamba-1: a selective scan, elementwise per (channel, state): discretise exp(dt A) (2), dt B x (1),
h = dA h + dBx (2), y += C h (2): 7 FLOPs per token per (channel, state), on vector units in both
prefill and decode (no matrix form). State d_inner N.
Both keep K-1 past inputs of their short convolution as conv state.
"""

from __future__ import annotations

import numpy as np

from costsim.families import recurrent
from costsim.families.cost import NORM_FLOPS_PER_ELEMENT, ArrayLike, Cost, Matrix, as_array
from costsim.spec.dtypes import Precision
from costsim.spec.model import Mamba2Mixer, MambaMixer

SSMMixer = Mamba2Mixer | MambaMixer
MAMBA1_SCAN_FLOPS = 7.0


def conv_dim(m: SSMMixer) -> int:
    if isinstance(m, Mamba2Mixer):
        return m.d_inner + 2 * m.n_groups * m.d_state
    return m.d_inner


def weight_matrices(m: SSMMixer, d: int) -> list[Matrix]:
    if isinstance(m, Mamba2Mixer):
        return [(d, 2 * m.d_inner + 2 * m.n_groups * m.d_state + m.num_heads), (m.d_inner, d)]
    return [
        (d, 2 * m.d_inner),
        (m.d_inner, m.dt_rank + 2 * m.d_state),  # x_proj -> dt, B, C
        (m.dt_rank, m.d_inner),  # dt_proj
        (m.d_inner, d),
    ]


def extra_params(m: SSMMixer, d: int) -> int:
    conv = conv_dim(m) * m.conv_kernel + (conv_dim(m) if m.conv_bias else 0)
    if isinstance(m, Mamba2Mixer):
        n = conv + 3 * m.num_heads + m.d_inner  # dt_bias, A_log, D, gated RMSNorm
        if m.in_proj_bias:
            n += weight_matrices(m, d)[0][1]
        if m.out_proj_bias:
            n += d
        return n
    n = conv + m.d_inner + m.d_inner * m.d_state + m.d_inner  # dt_proj bias, A_log, D
    if m.inner_layernorms:
        n += m.dt_rank + 2 * m.d_state
    if m.in_out_bias:
        n += 2 * m.d_inner + d
    return n


def state_elements(m: SSMMixer) -> int:
    if isinstance(m, Mamba2Mixer):
        return m.num_heads * m.head_dim * m.d_state
    return m.d_inner * m.d_state


def conv_state_elements(m: SSMMixer) -> int:
    return (m.conv_kernel - 1) * conv_dim(m)


def cache_bytes(m: SSMMixer, t: ArrayLike, p: Precision) -> dict[str, np.ndarray]:
    held = as_array(t) > 0
    return {
        "state": np.where(held, state_elements(m) * p.state_bytes, 0.0),
        "conv": np.where(held, conv_state_elements(m) * p.act_bytes, 0.0),
    }


def _state_bytes(m: SSMMixer, p: Precision) -> float:
    return state_elements(m) * p.state_bytes + conv_state_elements(m) * p.act_bytes


def _elementwise_per_token(m: SSMMixer) -> float:
    conv = 2.0 * m.conv_kernel * conv_dim(m)
    return conv + (NORM_FLOPS_PER_ELEMENT + 2.0) * m.d_inner  # z gate, D skip, norm


def _scan_per_token(m: SSMMixer) -> tuple[float, float]:
    """(matrix, vector) FLOPs per token of the prefill scan."""
    if isinstance(m, Mamba2Mixer):
        h, pdim, n, g, q = m.num_heads, m.head_dim, m.d_state, m.n_groups, m.chunk_size
        return h * (4.0 * pdim * n + 2.0 * q * pdim) + 2.0 * g * q * n, 0.0
    return 0.0, MAMBA1_SCAN_FLOPS * state_elements(m)


def _decode_per_token(m: SSMMixer) -> float:
    if isinstance(m, Mamba2Mixer):
        return 5.0 * state_elements(m)
    return MAMBA1_SCAN_FLOPS * state_elements(m)


def prefill(m: SSMMixer, d: int, n: ArrayLike, c: ArrayLike, batch: ArrayLike, p: Precision) -> Cost:
    matrix, vector = _scan_per_token(m)
    return recurrent.prefill(
        weight_matrices(m, d), n, c, batch, p,
        matrix_per_token=matrix,
        vector_per_token=vector + _elementwise_per_token(m),
        state_bytes=_state_bytes(m, p),
        act_elements_per_token=conv_dim(m) + m.d_inner,
    )


def decode(m: SSMMixer, d: int, t: ArrayLike, batch: ArrayLike, p: Precision) -> Cost:
    return recurrent.decode(
        weight_matrices(m, d), t, batch, p,
        vector_per_token=_decode_per_token(m) + _elementwise_per_token(m),
        state_bytes=_state_bytes(m, p),
        act_elements_per_token=conv_dim(m) + m.d_inner,
    )
