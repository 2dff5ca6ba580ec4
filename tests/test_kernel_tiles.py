"""Query-tile padding of decode kernels (costsim/families/kernel_tiles.py) and how the engine prices MLA decode
with FlashMLA: its 64-row head tile and its fitted table."""

from __future__ import annotations

import numpy as np
import pytest

from costsim.engine.timing import MLA_DECODE_IMPLEMENTATION, decode_step_time
from costsim.errors import CostsimError
from costsim.families import mla
from costsim.families.kernel_tiles import decode_query_rows, flash2_num_splits, flash2_split_schedule
from costsim.inputs.hardware import load_hardware
from costsim.inputs.models import load_model


def _mixer(model: str):
    return load_model(model).mixer_groups[0][0]


def test_flash2_needs_the_sm_count():
    with pytest.raises(CostsimError, match="compute_units"):
        decode_query_rows("torch-sdpa-flash", 64, 32, 8, None)


def test_unpadded_implementations_compute_the_group_only():
    assert decode_query_rows("microbench", 64, 32, 8, None) == 4
    assert decode_query_rows("torch-sdpa-cudnn", 64, 64, 8, 132) == 8


def test_flash2_pads_to_its_tiles_by_hand():
    # 32 query / 8 KV heads: group of 4. Batch 16: 128 CTAs < 211.2 -> split-KV kernel, 64 rows.
    assert decode_query_rows("torch-sdpa-flash", 16, 32, 8, 132) == 64
    # Batch 64: 512 CTAs -> the forward kernel's 128-row tile. On 148 SMs (B200) the switch is at 236.8.
    assert decode_query_rows("torch-sdpa-flash", 64, 32, 8, 132) == 128
    assert decode_query_rows("torch-sdpa-flash", 29, 32, 8, 148) == 64  # 232 < 236.8
    assert decode_query_rows("torch-sdpa-flash", 30, 32, 8, 148) == 128


def test_flashmla_padding_of_deepseek_v3_at_tp8_by_hand():
    """16 heads per GPU (128 / tp 8) are computed as 64: three times the real score and value FLOPs,
    2 x 48 x (2 x 512 + 64) = 104,448 FLOPs per attended key per sequence (1,000 cached + the new token);
    128 heads need no padding."""
    full = _mixer("deepseek-v3")
    tp8 = full.model_copy(update={"num_heads": 16})
    pad = mla.decode_tile_padding(tp8, np.array([1000.0]), np.array([2.0]), 64)
    assert float(pad.flops_matrix[0]) == pytest.approx(104_448 * 1001 * 2)
    assert float(mla.decode_tile_padding(full, np.array([1000.0]), np.array([2.0]), 64).flops_matrix[0]) == 0.0


def test_engine_prices_mla_decode_with_flashmla_table():
    """The h200 profile carries FlashMLA's fitted table; DeepSeek's decode attention follows it, and
    dropping the table changes only MLA's attention, not a GQA model's."""
    hw = load_hardware("h200")
    assert MLA_DECODE_IMPLEMENTATION in hw.efficiency.implementations
    others = {k: v for k, v in hw.efficiency.implementations.items() if k != MLA_DECODE_IMPLEMENTATION}
    bare = hw.model_copy(update={"efficiency": hw.efficiency.model_copy(update={"implementations": others})})
    t, b = np.array([4096.0, 65536.0]), np.array([1.0, 64.0])
    ds, llama = load_model("deepseek-v3"), load_model("llama-3.1-8b")
    with_table = decode_step_time(ds, hw, t, b).by_class
    without = decode_step_time(ds, bare, t, b).by_class
    assert not np.allclose(with_table["attention_decode"], without["attention_decode"])
    assert np.allclose(with_table["gemm"], without["gemm"])
    assert np.allclose(decode_step_time(llama, hw, t, b).total_s, decode_step_time(llama, bare, t, b).total_s)


def test_flash2_split_count_by_hand():
    """num_splits_heuristic on 132 SMs (264 CTA slots). One sequence, 2 KV heads (2 units), 8k context at
    head dim 128: 64 key blocks of 128. Wave efficiency 2s/264 grows with s, so the best is at s = 64
    (0.485); the fewest eligible splits within 0.85 of it: s >= 56.1, and every s from 33 to 63 leaves 2
    blocks per split like s - 1 does, so 64. At 32k (256 blocks) the cap of 128 splits binds: 2 blocks
    each. At head dim 256 the blocks hold 64 keys, so 8k is 128 blocks: 128 splits of 1."""
    assert flash2_num_splits(2, 64, 132) == 64
    assert flash2_split_schedule(1, 2, 8, 8192, 128, 132) == (64, 1, 1)
    assert flash2_split_schedule(1, 2, 8, 32768, 128, 132) == (128, 2, 1)
    assert flash2_split_schedule(1, 2, 8, 8192, 256, 132) == (128, 1, 1)
    # 16 units of 512 blocks: 16 splits fill 256 of 264 slots (0.970), the best; within 0.85 of it (0.824)
    # the fewest is 14 (224 / 264 = 0.848; 37 blocks each, 13 would leave 40); 13 gives 0.788
    assert flash2_num_splits(16, 512, 132) == 14
    # enough units to fill 0.8 of the slots: no split, and past the switch the unsplit kernel
    assert flash2_num_splits(212, 64, 132) == 1
    assert flash2_split_schedule(106, 2, 8, 8192, 128, 132) is None


def test_flash2_small_batch_decode_is_no_longer_a_line_in_the_bytes():
    """With the split-KV terms fitted (H200), one sequence's FlashAttention-2 decode at head dim 128 is
    predicted within 15% from 2k to 128k context, where the bytes alone were up to 47% short."""
    from pathlib import Path

    from costsim.evidence.validate import predict_record
    from costsim.inputs.measurements import read_measurements

    hw = load_hardware("h200")
    path = Path(__file__).parent.parent / "measurements" / "h200-torch-head-dim.jsonl"
    ones = [r for r in read_measurements(path) if r.get("source") == "torch-sdpa-flash" and r.get("batch") == 1
            and r.get("head_dim") == 128]
    assert len(ones) == 5
    for r in ones:
        assert abs(predict_record(r, hw) / r["time_s"] - 1) < 0.15, r["context"]
    split_free = load_hardware("h200").efficiency.implementations["torch-sdpa-flash/attention_decode/gqa_d128"]
    assert {"splitkv_fixed_s", "splitkv_per_split_s", "splitkv_per_block_s"} <= set(split_free)
