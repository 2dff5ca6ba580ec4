"""Hardware profiles: every required device exists, validates, and carries a source per number."""

from __future__ import annotations

import pytest

from costsim.inputs.hardware import hardware_names, load_hardware

REQUIRED = ["a100-80gb", "h100-sxm", "h100-pcie", "h200", "h20", "b200", "b300", "gb200", "gb300", "l40s", "l4",
            "rtx-4090", "rtx-5090", "rtx-pro-6000", "mi300x", "mi325x", "mi355x", "tpu-v5e", "tpu-v5p", "tpu-v6e",
            "tpu-v7", "gaudi3", "trainium2"]
SOURCED = ["dense_tflops", "vector_tflops", "memory_gb", "hbm_bandwidth_tb_s", "usd_per_hour", "efficiency"]


def test_every_required_device_has_a_profile():
    assert set(REQUIRED) <= set(hardware_names())


@pytest.mark.parametrize("name", hardware_names())
def test_profile_is_sourced_and_sane(name):
    hw = load_hardware(name)
    assert hw.name == name
    for field in SOURCED:
        assert hw.sources.get(field, "").strip(), f"{name}: no source for {field}"
    assert hw.price_date
    # dense, not sparse: no accelerator here does more than ~3 PFLOP/s dense bf16 per chip
    assert 50 <= hw.dense_tflops.get("bf16", hw.dense_tflops.get("fp16", 0)) <= 3000
    assert 0 < hw.efficiency.memory_max <= 1 and 0 < hw.efficiency.matmul_max <= 1


def test_datasheet_figures_a_person_can_check():
    h100 = load_hardware("h100-sxm")
    assert h100.dense_tflops["bf16"] == 989.4  # the datasheet's 1979 is 2:4 sparse
    assert h100.hbm_bandwidth_tb_s == 3.35 and h100.memory_gb == 80
    h200 = load_hardware("h200")
    assert h200.memory_gb == 141 and h200.hbm_bandwidth_tb_s == 4.8
    assert h200.dense_tflops["bf16"] == h100.dense_tflops["bf16"]  # same chip, other memory
    assert load_hardware("mi300x").memory_gb == 192


def test_overrides_and_fallback_dtypes():
    cheap = load_hardware("h100-sxm", usd_per_hour=1.85)
    assert cheap.usd_per_hour == 1.85
    a100 = load_hardware("a100-80gb")
    assert a100.peak_flops("fp8") == a100.peak_flops("bf16")  # no fp8 units: runs at bf16 rate
