"""Feed-forward blocks: dense (gated SwiGLU/GeGLU or plain GELU/ReLU^2) and mixture of experts.

MoE FLOPs count the k routed experts plus the shared ones per token. Weight bytes count the
experts a step actually touches: with B tokens routed uniformly to k of E experts, the expected
number of distinct experts is U(B) = E (1 - (1 - k/E)^B) — k for one token, E for a large batch.
"""

from __future__ import annotations

import numpy as np

from costsim.families.cost import (
    ACT_FLOPS_PER_ELEMENT,
    GATED_ACT_FLOPS_PER_ELEMENT,
    ArrayLike,
    Cost,
    Matrix,
    as_array,
    gemm_cost,
    matrix_params,
)
from costsim.spec.dtypes import Precision
from costsim.spec.model import GATED_ACTIVATIONS, DenseFFN, MoEFFN

FFNBlock = DenseFFN | MoEFFN


def mlp_matrices(d: int, f: int, activation: str) -> list[Matrix]:
    if activation in GATED_ACTIVATIONS:
        return [(d, f), (d, f), (f, d)]
    return [(d, f), (f, d)]


def _mlp_bias(d: int, f: int, activation: str) -> int:
    return (2 * f if activation in GATED_ACTIVATIONS else f) + d


def _act_flops(f: int, activation: str) -> float:
    return (GATED_ACT_FLOPS_PER_ELEMENT if activation in GATED_ACTIVATIONS else ACT_FLOPS_PER_ELEMENT) * f


def expert_params(m: MoEFFN, d: int) -> int:
    n = matrix_params(mlp_matrices(d, m.expert_intermediate_size, m.activation))
    if m.expert_bias:
        n += _mlp_bias(d, m.expert_intermediate_size, m.activation)
    return n


def _always_on_matrices(m: MoEFFN, d: int) -> list[Matrix]:
    mats: list[Matrix] = [(d, m.num_experts)]  # router
    if m.shared_intermediate_size:
        mats += mlp_matrices(d, m.shared_intermediate_size, m.activation)
    if m.shared_expert_gate:
        mats.append((d, 1))
    return mats


def _always_on_extra(m: MoEFFN) -> int:
    return m.num_experts if m.router_bias else 0


def params(f: FFNBlock, d: int) -> int:
    if isinstance(f, DenseFFN):
        bias = _mlp_bias(d, f.intermediate_size, f.activation) if f.bias else 0
        return matrix_params(mlp_matrices(d, f.intermediate_size, f.activation)) + bias
    return matrix_params(_always_on_matrices(f, d)) + _always_on_extra(f) + f.num_experts * expert_params(f, d)


def active_params(f: FFNBlock, d: int) -> int:
    if isinstance(f, DenseFFN):
        return params(f, d)
    return matrix_params(_always_on_matrices(f, d)) + _always_on_extra(f) + f.top_k * expert_params(f, d)


def expected_experts_touched(num_experts: int, top_k: int, tokens: ArrayLike) -> np.ndarray:
    """E (1 - (1 - k/E)^T): distinct experts hit by T tokens under uniform top-k routing."""
    tokens = as_array(tokens)
    e = float(num_experts)
    return e * (1.0 - (1.0 - top_k / e) ** tokens)


def gemm_matrices(f: FFNBlock, d: int) -> tuple[list[Matrix], list[float]]:
    """The block's weight matrices (K, N) and the rows each sees per token (top_k for routed experts)."""
    if isinstance(f, DenseFFN):
        mats = mlp_matrices(d, f.intermediate_size, f.activation)
        return mats, [1.0] * len(mats)
    always = _always_on_matrices(f, d)
    experts = mlp_matrices(d, f.expert_intermediate_size, f.activation)
    return always + experts, [1.0] * len(always) + [float(f.top_k)] * len(experts)


def cost(f: FFNBlock, d: int, tokens: ArrayLike, p: Precision) -> Cost:
    """All `tokens` of one forward step (prefill chunk or decode batch) through the block."""
    tokens = as_array(tokens)
    if isinstance(f, DenseFFN):
        base = gemm_cost(tokens, mlp_matrices(d, f.intermediate_size, f.activation), p.weight_bytes, p.act_bytes)
        return base + Cost.of(flops_vector=tokens * _act_flops(f.intermediate_size, f.activation))
    shared = gemm_cost(tokens, _always_on_matrices(f, d), p.weight_bytes, p.act_bytes)
    expert_mats = mlp_matrices(d, f.expert_intermediate_size, f.activation)
    routed = gemm_cost(tokens * f.top_k, expert_mats, p.expert_weight_bytes, p.act_bytes)
    touched = expected_experts_touched(f.num_experts, f.top_k, tokens)
    vector = tokens * (
        f.top_k * _act_flops(f.expert_intermediate_size, f.activation)
        + _act_flops(f.shared_intermediate_size, f.activation)
        + 4.0 * f.num_experts  # router softmax/sigmoid and top-k
    )
    return shared + Cost.of(
        flops_matrix=routed.flops_matrix,
        flops_vector=vector,
        bytes_weights=touched * expert_params(f, d) * p.expert_weight_bytes,
        bytes_activations=routed.bytes_activations,
    )
