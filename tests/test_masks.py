"""Closed-form pair counts against brute-force loops over every (query, key) pair."""

from __future__ import annotations

import numpy as np
import pytest

from costsim.families.cost import (
    chunk_pairs_before,
    full_pairs_before,
    strided_blocks_before,
    window_pairs_before,
)


def brute(m: int, visible) -> int:
    return sum(sum(1 for j in range(i + 1) if visible(i, j)) for i in range(m))


@pytest.mark.parametrize("m", [0, 1, 2, 7, 64, 100])
def test_full_mask(m):
    assert full_pairs_before(np.float64(m)) == brute(m, lambda i, j: True)


@pytest.mark.parametrize("w", [1, 3, 16])
@pytest.mark.parametrize("m", [0, 1, 5, 16, 17, 50])
def test_window_mask(m, w):
    assert window_pairs_before(np.float64(m), w) == brute(m, lambda i, j: i - j < w)


@pytest.mark.parametrize("c", [1, 4, 8])
@pytest.mark.parametrize("m", [0, 1, 4, 9, 33])
def test_chunk_mask(m, c):
    assert chunk_pairs_before(np.float64(m), c) == brute(m, lambda i, j: j >= c * (i // c))


@pytest.mark.parametrize(("block", "stride"), [(32, 16), (8, 4), (4, 4), (5, 2)])
@pytest.mark.parametrize("m", [0, 1, 4, 31, 32, 33, 100, 257])
def test_compressed_blocks(m, block, stride):
    # query i sees compression block b (tokens b*s .. b*s+l-1) once it is complete: b*s + l - 1 <= i
    def blocks_visible(i):
        return sum(1 for b in range(i + 1) if b * stride + block - 1 <= i)

    assert strided_blocks_before(np.float64(m), block, stride) == sum(blocks_visible(i) for i in range(m))


def test_masks_broadcast_over_arrays():
    m = np.arange(0, 100, dtype=np.float64)
    expected = np.array([brute(int(k), lambda i, j: i - j < 8) for k in m])
    np.testing.assert_array_equal(window_pairs_before(m, 8), expected)
