"""Calibration: fits stay physical, improve held-out error, and --write round-trips a profile."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from costsim.calibrate import calibrate
from costsim.cli import main
from costsim.hardware import load_hardware
from costsim.spec.measurement import read_measurements

ROOT = Path(__file__).parent.parent
H100_FILES = [ROOT / "measurements" / f for f in ("h100-sxm.jsonl", "h100-sxm-torch.jsonl")]


@pytest.fixture(scope="module")
def h100_fit():
    records = [r for f in H100_FILES for r in read_measurements(f)]
    return calibrate(records, load_hardware("h100-sxm"))


def test_fitted_efficiencies_are_physical(h100_fit):
    eff = h100_fit["efficiency"]
    for key in ("memory_max", "matmul_max", "attention_max", "scan_max"):
        assert 0 < eff[key] <= 1
    assert 0 < eff["graph_overhead_s"] < eff["kernel_overhead_s"] < 1e-4


def test_held_out_error_does_not_get_worse(h100_fit):
    for group in h100_fit["groups"]:
        if "skipped" in group:
            continue
        assert group["held_out"]["median_abs"] <= group["held_out_before"]["median_abs"] + 0.02, group["group"]
    attention = next(g for g in h100_fit["groups"] if g["group"] == "prefill attention")
    assert attention["held_out"]["median_abs"] <= 0.10


def test_write_updates_the_profile_file(tmp_path, capsys):
    profile = tmp_path / "h100-copy.toml"
    shutil.copy(ROOT / "hardware_profiles" / "h100-sxm.toml", profile)
    args = ["calibrate", *map(str, H100_FILES), "-H", str(profile), "--write", "-f", "json"]
    assert main(args) == 0
    capsys.readouterr()
    from costsim.spec.hardware import Efficiency

    written = load_hardware(str(profile))
    assert written.efficiency.memory_max != Efficiency().memory_max
    assert "fla/linear_prefill/gdn" in written.efficiency.implementations
    assert "fitted by costsim calibrate" in written.sources["efficiency"]
