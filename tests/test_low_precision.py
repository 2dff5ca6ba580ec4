"""Block-scaled 4-bit weights and caches: the bytes include their scales, and the math runs at the rate the
chip has for them (FP4 tensor cores on Blackwell, dequantised to bf16 on Hopper)."""

from __future__ import annotations

import pytest

import costsim
from costsim.cli import main
from costsim.inputs.hardware import load_hardware
from costsim.spec.dtypes import dtype_bytes

LLAMA_70B = 70_553_706_496  # parameters, tests/test_presets.py


def test_block_scales_are_counted_in_the_bytes():
    assert dtype_bytes("nvfp4") == 4.5 / 8  # 16 E2M1 values (8 bytes) + one E4M3 scale byte
    assert dtype_bytes("mxfp4") == 4.25 / 8  # 32 E2M1 values (16 bytes) + one E8M0 scale byte
    nv = costsim.estimate("llama-3.1-70b", "b200", context="8k", weights="nvfp4", engine=None, single_device=True)
    mx = costsim.estimate("llama-3.1-70b", "b200", context="8k", weights="mxfp4", engine=None, single_device=True)
    assert nv["weight_bytes"] == LLAMA_70B * 9 // 16 == 39_686_459_904
    assert mx["weight_bytes"] == LLAMA_70B * 17 // 32


def test_fp4_formats_run_at_the_fp4_rate_where_the_chip_has_one_and_at_bf16_where_it_does_not():
    b200, h100 = load_hardware("b200"), load_hardware("h100-sxm")
    assert b200.peak_flops("nvfp4") == b200.peak_flops("mxfp4") == b200.peak_flops("fp4") > b200.peak_flops("fp8")
    assert h100.peak_flops("mxfp4") == h100.peak_flops("bf16")


def test_the_command_line_takes_them(capsys):
    assert main(["estimate", "-m", "gpt-oss-120b", "-H", "h100-sxm", "--weight-dtype", "mxfp4", "-f", "json"]) == 0
    assert main(["estimate", "--weight-dtype", "nvfp5"]) == 2
    assert "nvfp5" in capsys.readouterr().err


@pytest.mark.parametrize("kv", ["nvfp4", "fp8"])
def test_a_smaller_cache_type_holds_more_sequences(kv):
    base = costsim.estimate("llama-3.1-8b", "b200", context="32k", engine=None)
    small = costsim.estimate("llama-3.1-8b", "b200", context="32k", kv_cache=kv, engine=None)
    assert small["cache_bytes_per_sequence"] == pytest.approx(base["cache_bytes_per_sequence"] * dtype_bytes(kv) / 2)
    assert small["max_batch"] > base["max_batch"]


def test_routed_experts_can_be_stored_apart():
    """gpt-oss-120b: MXFP4 routed experts beside bf16 attention, as its checkpoint ships it."""
    from costsim.families import model_costs as mc
    from costsim.spec.dtypes import Precision

    spec = costsim.load_model("gpt-oss-120b")
    total, routed = mc.param_counts(spec).total, mc.routed_expert_params(spec)
    # 36 layers x 128 experts x 3 x 2,880 x 2,880 weights, plus their biases (2 x 2,880 + 2,880 each)
    assert routed == 36 * 128 * (3 * 2880 * 2880 + 3 * 2880)
    mixed = mc.weight_bytes(spec, Precision(weights="bf16", experts="mxfp4"))
    assert mixed == (total - routed) * 2 + routed * 17 / 32
    assert mc.weight_bytes(spec, Precision(weights="bf16")) == total * 2
    # one H100 holds the mixed checkpoint, not the bf16 one
    rows = costsim.serve("gpt-oss-120b", "h100-sxm", concurrency="8", experts="mxfp4")
    assert rows[0]["fits_memory"] and rows[0]["tpot_s"]["p50"] > 0
    assert not costsim.serve("gpt-oss-120b", "h100-sxm", concurrency="8")[0]["fits_memory"]
