"""How many query rows a decode-attention kernel computes per KV head: the tensor-core tile it pads to.

A decode step has one query token, so the query heads that share a KV head (the GQA group, G of them)
are all the rows there are. An implementation that packs the group into a query tile of M rows
computes ceil(G / M) * M rows: when M is much larger than G, most of the tensor-core work is padding,
and a kernel with a modest compute ceiling can turn compute-bound though the arithmetic intensity
of the real work is only G FLOPs per byte.

PyTorch's FlashAttention-2 (``torch-sdpa-flash``; aten/src/ATen/native/transformers/cuda/flash_attn/
flash_api.cpp) treats one-token decode with GQA by swapping the group into the query length
(``seqlenq_ngroups_swapped``: G rows per KV head) and then chooses between two kernels:

- split-KV (``flash_fwd_splitkv_kernel``, a 64-row query tile) while batch x kv_heads x ceil(G/64)
  is below 0.8 x 2 x SMs (``num_splits_heuristic`` with two 128-thread CTAs per SM): the KV sequence
  is then cut into enough chunks to fill the chip;
- otherwise the ordinary forward kernel (``flash_fwd_kernel``; on sm90 its hdim-128 tile is 128 x 64),
  one CTA per (sequence, KV head), 128 query rows.

Below the switch, `flash2_split_schedule` gives the split count FlashAttention-2 picks and the key blocks
each CTA streams: at one or a few sequences the time follows those, not the bytes (validate's split-KV
floor). On the H200 this switch shows as a step: 16 query / 2 KV heads at 8k context take 221 us at batch 105
and 411 us at batch 106 (2 x 105 = 210 < 211.2 <= 212), measurements/h200-torch-fa2-split.jsonl.
FlashMLA (``flashmla``) puts the query heads of its one latent KV head in 64-row tiles
(``costsim_flashmla_sm_parts`` in microbench/flashmla_capi.cu follows the same count): DeepSeek-V3's 128
heads fill two, while the 16 heads one GPU holds at tensor parallelism 8 are padded to 64.
Other implementations here (cuDNN, our microbenchmark kernels) are taken to compute the group's rows
without padding.
"""

from __future__ import annotations

import math

from costsim.errors import CostsimError

FLASH2_MAX_SPLITS = 128
FLASH2_SPLIT_EFFICIENCY = 0.85  # the fewest splits whose wave efficiency is within this of the best
FLASH2_SPLIT_TILE_ROWS = 64
FLASH2_UNSPLIT_TILE_ROWS = 128  # sm90, head dim 128: Flash_fwd_kernel_traits<128, 128, 64, 4>
FLASH2_CTAS_PER_SM = 2
FLASH2_FILL_FRACTION = 0.8
FLASHMLA_TILE_ROWS = 64


def padded_rows(rows: float, tile_rows: int) -> int:
    """Rows a kernel computes for `rows` real ones in tiles of `tile_rows`."""
    return math.ceil(rows / tile_rows) * tile_rows


def flash2_decode_splits_kv(batch: float, kv_heads: float, group: float, compute_units: int) -> bool:
    """True where PyTorch's FlashAttention-2 runs one-token decode with its split-KV kernel."""
    blocks = batch * kv_heads * math.ceil(group / FLASH2_SPLIT_TILE_ROWS)
    return blocks < FLASH2_FILL_FRACTION * FLASH2_CTAS_PER_SM * compute_units


def flash2_block_n(head_dim: float) -> int:
    """Keys per block of FlashAttention-2's split-KV kernel (Flash_fwd_kernel_traits' kBlockN)."""
    return 256 if head_dim <= 64 else 128 if head_dim <= 128 else 64


def flash2_num_splits(blocks: int, n_blocks: int, compute_units: int) -> int:
    """FlashAttention-2's num_splits_heuristic: `blocks` (sequence, KV head, query tile) units, each over
    `n_blocks` key blocks, on 2 CTAs per SM. Among split counts that change the blocks per split, it takes
    the fewest whose wave efficiency (work / whole waves) is within 0.85 of the best, up to 128."""
    slots = FLASH2_CTAS_PER_SM * compute_units
    if blocks >= FLASH2_FILL_FRACTION * slots:
        return 1
    most = min(FLASH2_MAX_SPLITS, slots, n_blocks)
    efficiency = {}
    for splits in range(1, most + 1):
        if splits > 1 and math.ceil(n_blocks / splits) == math.ceil(n_blocks / (splits - 1)):
            continue  # the same blocks per split as one split fewer
        waves = blocks * splits / slots
        efficiency[splits] = waves / math.ceil(waves)
    best = max(efficiency.values())
    return min(s for s, e in efficiency.items() if e >= FLASH2_SPLIT_EFFICIENCY * best)


def flash2_split_schedule(batch: float, kv_heads: float, group: float, context: float, head_dim: float,
                          compute_units: int) -> tuple[int, int, int] | None:
    """(splits, key blocks per split, waves of CTAs) of FlashAttention-2's split-KV decode; None where it
    runs the unsplit kernel. With few (sequence, KV head) pairs each CTA streams a short slice of one
    sequence's cache, and the time follows the blocks per CTA and the splits to combine, not the bytes."""
    if not flash2_decode_splits_kv(batch, kv_heads, group, compute_units):
        return None
    blocks = int(batch * kv_heads * math.ceil(group / FLASH2_SPLIT_TILE_ROWS))
    n_blocks = math.ceil(context / flash2_block_n(head_dim))
    splits = flash2_num_splits(blocks, n_blocks, compute_units)
    waves = math.ceil(blocks * splits / (FLASH2_CTAS_PER_SM * compute_units))
    return splits, math.ceil(n_blocks / splits), waves


def decode_query_rows(source: str, batch: float, heads: float, kv_heads: float,
                      compute_units: int | None) -> float:
    """Query rows per KV head that the implementation `source` computes for one decode token."""
    group = heads / kv_heads
    if source == "flashmla":
        return padded_rows(group, FLASHMLA_TILE_ROWS)
    if source != "torch-sdpa-flash":
        return group
    if compute_units is None:
        raise CostsimError("FlashAttention-2 decode depends on the chip's SM count, which this hardware profile "
                           "lacks; add compute_units = <SMs> to the profile")
    split = flash2_decode_splits_kv(batch, kv_heads, group, compute_units)
    tile = FLASH2_SPLIT_TILE_ROWS if split else FLASH2_UNSPLIT_TILE_ROWS
    return padded_rows(group, tile)
