"""The cost record every family returns, and the helpers they share.

A cost splits FLOPs by the unit that executes them (matrix units vs vector/scalar units) and
bytes by what they are (weights, cache read, cache written, activations), so the timing model
can price each with its own ceiling. Every field is a numpy array that broadcasts over context,
new tokens and batch.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, fields

import numpy as np

ArrayLike = float | int | np.ndarray


def as_array(x: ArrayLike) -> np.ndarray:
    # float64 on purpose: prefill FLOPs at 10M tokens exceed int64 (t^2 * 1e5 * layers).
    return np.asarray(x, dtype=np.float64)


@dataclass(frozen=True)
class Cost:
    flops_matrix: np.ndarray
    flops_vector: np.ndarray
    bytes_weights: np.ndarray
    bytes_cache_read: np.ndarray
    bytes_cache_write: np.ndarray
    bytes_activations: np.ndarray

    @staticmethod
    def zero() -> Cost:
        z = np.float64(0.0)
        return Cost(z, z, z, z, z, z)

    @staticmethod
    def of(
        flops_matrix: ArrayLike = 0.0,
        flops_vector: ArrayLike = 0.0,
        bytes_weights: ArrayLike = 0.0,
        bytes_cache_read: ArrayLike = 0.0,
        bytes_cache_write: ArrayLike = 0.0,
        bytes_activations: ArrayLike = 0.0,
    ) -> Cost:
        # one common shape, so every field of a cost indexes the same (context, batch, ...) grid;
        # broadcast only the fields that need it (np.broadcast_arrays on all six is the slow path)
        values = [as_array(v) for v in (flops_matrix, flops_vector, bytes_weights, bytes_cache_read,
                                          bytes_cache_write, bytes_activations)]
        shape = np.broadcast_shapes(*(v.shape for v in values))
        return Cost(*(v if v.shape == shape else np.broadcast_to(v, shape) for v in values))

    def __add__(self, other: Cost) -> Cost:
        return Cost(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))

    def scaled(self, factor: ArrayLike) -> Cost:
        k = as_array(factor)
        return Cost(*(getattr(self, f.name) * k for f in fields(self)))

    @property
    def flops(self) -> np.ndarray:
        return self.flops_matrix + self.flops_vector

    @property
    def bytes_total(self) -> np.ndarray:
        return self.bytes_weights + self.bytes_cache_read + self.bytes_cache_write + self.bytes_activations

    def as_dict(self) -> dict[str, np.ndarray]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def total(costs: Iterable[Cost]) -> Cost:
    acc = Cost.zero()
    for c in costs:
        acc = acc + c
    return acc


Matrix = tuple[int, int]  # (in_features, out_features)


def matrix_params(matrices: Iterable[Matrix]) -> int:
    return sum(i * o for i, o in matrices)


def gemm_cost(
    tokens: ArrayLike, matrices: list[Matrix], weight_bytes: float, act_bytes: float
) -> Cost:
    """`tokens` rows through each weight matrix: 2 FLOPs per multiply-add, weights read once,
    each input row read and each output row written once."""
    n = as_array(tokens)
    mn = float(matrix_params(matrices))
    io = float(sum(i + o for i, o in matrices))
    return Cost.of(
        flops_matrix=2.0 * n * mn,
        bytes_weights=np.where(n > 0, mn * weight_bytes, 0.0),
        bytes_activations=n * io * act_bytes,
    )


# Vector FLOPs per element for the cheap elementwise work around the matrix products. These are
# order-of-magnitude counts (documented in docs/methodology.md); the matrix terms are exact.
SOFTMAX_FLOPS_PER_SCORE = 5.0  # scale, running max, subtract, exp, sum
NORM_FLOPS_PER_ELEMENT = 4.0  # square, sum, scale by rsqrt, weight
GATED_ACT_FLOPS_PER_ELEMENT = 5.0  # silu/gelu (~4) and the gate product
ACT_FLOPS_PER_ELEMENT = 4.0


# --- exact counts of causal (query, key) pairs -------------------------------------------------
# keys_before(m) = number of (query, key) pairs for queries at positions 0..m-1, so the pairs of
# n new queries after c cached tokens are keys_before(c + n) - keys_before(c). Defining every
# mask through its prefix sum makes prefill(n after c) + prefill(c) == prefill(c + n) exact.


def full_pairs_before(m: np.ndarray) -> np.ndarray:
    """Query i attends i + 1 keys (itself included)."""
    return m * (m + 1.0) / 2.0


def window_pairs_before(m: np.ndarray, window: float) -> np.ndarray:
    """Query i attends min(i + 1, W) keys: the W most recent, itself included."""
    w = float(window)
    inside = np.minimum(m, w)
    return inside * (inside + 1.0) / 2.0 + np.maximum(m - w, 0.0) * w


def chunk_pairs_before(m: np.ndarray, chunk: float) -> np.ndarray:
    """Query i attends keys [C*floor(i/C), i]: (i mod C) + 1 keys (Llama 4 chunked attention)."""
    c = float(chunk)
    q = np.floor(m / c)
    r = m - q * c
    return q * c * (c + 1.0) / 2.0 + r * (r + 1.0) / 2.0


def strided_blocks_before(m: np.ndarray, block: float, stride: float) -> np.ndarray:
    """Sum over queries 0..m-1 of the number of complete compression blocks (length l, stride s)
    visible to query i: max(0, floor((i + 1 - l) / s) + 1)."""
    u_max = m - float(block)  # query i sees blocks when i + 1 >= l, i.e. u = i + 1 - l in 0..m - l
    valid = u_max >= 0
    u = np.where(valid, u_max, 0.0)
    q = np.floor(u / stride)
    r = u - q * stride
    floors = stride * q * (q - 1.0) / 2.0 + q * (r + 1.0)
    return np.where(valid, floors + u + 1.0, 0.0)


def keys_at(pairs_before, t: np.ndarray, *args: float) -> np.ndarray:
    """Keys attended by the query at position t (a decode step with t cached tokens)."""
    return pairs_before(t + 1.0, *args) - pairs_before(t, *args)
