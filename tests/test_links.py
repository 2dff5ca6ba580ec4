"""Scale-up and scale-out links (issue 19): every profile states both with a source, PCIe cards talk over
PCIe at their generation's rate, and a layout that needs a network the profile lacks is refused, never
priced over a placeholder rate."""

from __future__ import annotations

import pytest

import costsim
from costsim.cli import main
from costsim.engine import comm
from costsim.errors import CostsimError
from costsim.inputs.hardware import hardware_names, load_hardware
from costsim.serving.layouts import evaluate_layout
from costsim.serving.plan import plan
from costsim.spec.deployment import Deployment
from costsim.spec.layout import Layout

PCIE_ONLY = ["l4", "l40s", "rtx-4090", "rtx-5090", "rtx-pro-6000"]


@pytest.mark.parametrize("name", hardware_names())
def test_every_profile_states_both_links_with_a_source(name):
    hw = load_hardware(name)
    assert hw.scale_up_gb_s > 0, f"{name}: no scale-up link"
    assert hw.scale_out_gb_s >= 0
    for field in ("scale_up_gb_s", "scale_up_domain", "scale_out_gb_s"):
        assert hw.sources.get(field, "").strip(), f"{name}: no source for {field}"


@pytest.mark.parametrize("name", PCIE_ONLY)
def test_pcie_cards_link_over_pcie_in_a_host_of_several(name):
    hw = load_hardware(name)
    # PCIe Gen4 x16 = 64 GB/s, Gen5 x16 = 128 GB/s, both directions together
    assert hw.scale_up_gb_s in (64, 128)
    assert hw.scale_up_domain > 1
    source = hw.sources["scale_up_gb_s"] + hw.sources["scale_up_domain"] + hw.sources["scale_out_gb_s"]
    assert "PCI" in hw.sources["scale_up_gb_s"] and "http" in source and "read 2026-12-04" in source


@pytest.mark.parametrize("name", hardware_names())
def test_no_link_slower_than_1_gb_s(name):
    """Any span a layout could have is either priced at 1 GB/s or more, or refused (no network)."""
    hw = load_hardware(name)
    for span in range(1, 1025):
        try:
            bandwidth, latency = comm.link(hw, span)
        except CostsimError as exc:
            assert hw.scale_out_gb_s == 0 and span > hw.scale_up_domain
            assert f"has none beyond {hw.scale_up_domain} devices" in str(exc)
            continue
        assert bandwidth >= 1e9 and latency > 0, f"{name}: {bandwidth / 1e9:.3g} GB/s over {span} devices"


def test_all_reduce_over_pcie_by_hand():
    """256 MiB all-reduced over the 8 L40S of one PCIe host (g6e.48xlarge).
    Link: 64 GB/s bidirectional -> 32 GB/s per direction x COMM_EFFICIENCY 0.80 = 25.6e9 B/s.
    Ring: 2 x 7/8 x 268,435,456 B / 25.6e9 B/s = 18.350080 ms, plus 2 x ceil(log2 8) = 6 steps of the
    4 us scale-up latency = 0.024 ms: 18.374080 ms."""
    l40s = load_hardware("l40s")
    assert (comm.COMM_EFFICIENCY, comm.SCALE_UP_LATENCY_S) == (0.80, 4e-6)
    assert float(comm.all_reduce(l40s, 8, 2**28)) == pytest.approx(18.374080e-3, rel=1e-9)
    # two hosts: the 400 Gbps of the instance shared by its 8 GPUs, 6.25 GB/s x 0.80 = 5e9 B/s
    # 2 x 15/16 x 2^28 / 5e9 = 100.663296 ms + 2 x 4 x 12 us = 0.096 ms
    assert float(comm.all_reduce(l40s, 16, 2**28)) == pytest.approx(100.759296e-3, rel=1e-9)


def test_tensor_parallel_over_pcie_is_priced():
    spec = costsim.load_model("llama-3.1-70b")
    r = evaluate_layout(spec, load_hardware("l40s"), Deployment(), Layout(tp=8), 32_000)
    assert r["fits_memory"] and "reason" not in r
    assert 0 < r["ttft_s"] < 60 and r["tpot_s"] < 1.0


def test_l40s_plan_lists_only_plausible_layouts():
    """The 1 MB/s placeholder once made 'l40s x 8 (pp=8)' feasible at a TTFT of 1,183 s."""
    result = plan(costsim.load_model("llama-3.1-70b"), load_hardware("l40s"), Deployment(), 32_000)
    assert result["feasible"]
    for r in result["feasible"]:
        assert r["ttft_s"] < 600, f"{r['label']}: TTFT {r['ttft_s']:.0f} s"
        assert r["tpot_s"] < 5


def test_consumer_cards_refuse_layouts_beyond_one_host():
    spec = costsim.load_model("llama-3.1-70b")
    hw = load_hardware("rtx-4090")
    result = plan(spec, hw, Deployment(), 32_000, max_devices=16)
    beyond = [r for r in result["rejected"] if r["devices"] > hw.scale_up_domain and r["layout"]["dp"] == 1]
    assert beyond and all("needs a scale-out network: rtx-4090 has none beyond 6 devices" in r["reason"]
                          for r in beyond)
    assert all(r["devices"] <= hw.scale_up_domain for r in result["feasible"])
    with pytest.raises(CostsimError, match="needs a scale-out network"):
        evaluate_layout(spec, hw, Deployment(), Layout(pp=8), 32_000)
    # replicas do not communicate: dp beyond the host is fine
    evaluate_layout(costsim.load_model("llama-3.1-8b"), hw, Deployment(), Layout(tp=2, dp=8), 8192)


def test_explicit_layout_beyond_the_host_is_one_line(capsys):
    code = main(["estimate", "-m", "llama-3.1-70b", "-H", "rtx-5090", "--layout", "tp=4,pp=2", "-c", "32k"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert "needs a scale-out network: rtx-5090 has none beyond 4 devices" in err
    assert "keep tp x cp x pp within 4" in err
