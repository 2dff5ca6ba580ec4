"""The shape every fixed-state mixer shares (linear attention, gated delta rule, Mamba).

A prefill of n tokens reads the state once (when a prefix is cached), writes it once, and does a
fixed amount of work per token; a decode step reads and writes the whole state for each sequence.
Nothing here grows with context — that is the point of these families.
"""

from __future__ import annotations

import numpy as np

from costsim.families.cost import ArrayLike, Cost, Matrix, as_array, gemm_cost
from costsim.spec.dtypes import Precision


def prefill(
    d_matrices: list[Matrix],
    n: ArrayLike,
    c: ArrayLike,
    batch: ArrayLike,
    p: Precision,
    *,
    matrix_per_token: float,
    vector_per_token: float,
    state_bytes: float,
    act_elements_per_token: float,
) -> Cost:
    n, c, batch = as_array(n), as_array(c), as_array(batch)
    per_seq = Cost.of(
        flops_matrix=matrix_per_token * n,
        flops_vector=vector_per_token * n,
        bytes_cache_read=np.where(c > 0, state_bytes, 0.0),
        bytes_cache_write=np.where(n > 0, state_bytes, 0.0),
        bytes_activations=n * act_elements_per_token * p.act_bytes,
    )
    return per_seq.scaled(batch) + gemm_cost(batch * n, d_matrices, p.weight_bytes, p.act_bytes)


def decode(
    d_matrices: list[Matrix],
    t: ArrayLike,
    batch: ArrayLike,
    p: Precision,
    *,
    vector_per_token: float,
    state_bytes: float,
    act_elements_per_token: float,
) -> Cost:
    t, batch = as_array(t), as_array(batch)
    one = np.ones_like(t)
    per_seq = Cost.of(
        flops_vector=one * vector_per_token,
        bytes_cache_read=one * state_bytes,
        bytes_cache_write=one * state_bytes,
        bytes_activations=one * act_elements_per_token * p.act_bytes,
    )
    return per_seq.scaled(batch) + gemm_cost(batch * one, d_matrices, p.weight_bytes, p.act_bytes)
