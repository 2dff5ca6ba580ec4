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
