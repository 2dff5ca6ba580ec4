"""Collective communication time: a latency term per algorithm step plus bytes over link bandwidth.

For n ranks, S the bytes of the buffer each rank holds (all-reduce, all-to-all) or of the gathered
result (all-gather, reduce-scatter), B the per-direction bandwidth of the links the group uses and
a the latency of one step:

    all-reduce (ring)          2 (n-1)/n S / B + 2 ceil(log2 n) a
    all-gather / reduce-scatter (n-1)/n S / B +   ceil(log2 n) a
    all-to-all                  (n-1)/n S / B +   ceil(log2 n) a
    point-to-point                       S / B +                a

B is the scale-up link (NVLink / Infinity Fabric / ICI, or PCIe on cards without one: half the
bidirectional figure of the profile) when the whole group fits in the scale-up domain, else the
scale-out network per device, times COMM_EFFICIENCY (what NCCL's bus bandwidth reaches of the link
rate). A group that leaves the domain of a profile without a scale-out network (scale_out_gb_s = 0:
consumer cards) is not priced: `link` raises, and `engine/sharding.py` refuses such layouts first.
The latencies and the efficiency are assumptions from published NCCL figures, not yet fitted to the
committed NCCL measurements (docs/deployments.md says so).
"""

from __future__ import annotations

import numpy as np

from costsim.errors import CostsimError
from costsim.families.cost import ArrayLike, as_array
from costsim.spec.hardware import HardwareProfile

COMM_EFFICIENCY = 0.80
SCALE_UP_LATENCY_S = 4e-6
SCALE_OUT_LATENCY_S = 12e-6


def no_scale_out(hw: HardwareProfile) -> str:
    """Why a group beyond the scale-up domain cannot be priced on `hw` (it has no scale-out network)."""
    return f"needs a scale-out network: {hw.name} has none beyond {hw.scale_up_domain} devices"


def link(hw: HardwareProfile, group_span: int) -> tuple[float, float]:
    """(bytes/s, latency) for a group spanning `group_span` consecutive devices."""
    if group_span <= hw.scale_up_domain and hw.scale_up_gb_s > 0:
        return hw.scale_up_gb_s * 1e9 / 2 * COMM_EFFICIENCY, SCALE_UP_LATENCY_S
    if hw.scale_out_gb_s <= 0:
        raise CostsimError(f"a group of {group_span} devices {no_scale_out(hw)}; keep it within one host "
                           f"({hw.scale_up_domain} devices) or pick hardware with a network")
    return hw.scale_out_gb_s * 1e9 * COMM_EFFICIENCY, SCALE_OUT_LATENCY_S


def _steps(n: int) -> float:
    return float(np.ceil(np.log2(n))) if n > 1 else 0.0


def all_reduce(hw: HardwareProfile, n: int, nbytes: ArrayLike, span: int | None = None) -> np.ndarray:
    if n <= 1:
        return np.zeros_like(as_array(nbytes))
    bw, lat = link(hw, span or n)
    return 2.0 * (n - 1) / n * as_array(nbytes) / bw + 2.0 * _steps(n) * lat


def all_gather(hw: HardwareProfile, n: int, nbytes: ArrayLike, span: int | None = None) -> np.ndarray:
    if n <= 1:
        return np.zeros_like(as_array(nbytes))
    bw, lat = link(hw, span or n)
    return (n - 1) / n * as_array(nbytes) / bw + _steps(n) * lat


reduce_scatter = all_gather
all_to_all = all_gather


def point_to_point(hw: HardwareProfile, nbytes: ArrayLike, span: int) -> np.ndarray:
    bw, lat = link(hw, span)
    return as_array(nbytes) / bw + lat
