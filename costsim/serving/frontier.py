"""The throughput-interactivity frontier: output tokens/s per device against tokens/s per user.

For each hardware, every layout up to `max_devices` (tensor parallel powers of two within the scale-up
domain, pipeline stages where the model does not fit otherwise, experts over the tensor-parallel group
for MoE) is served at concurrency levels from 1 to what its KV pool holds, all levels of a layout in one
vectorised call. A point is on the frontier when no other point of the same hardware gives both more
tokens/s per user and more tokens/s per device; each carries its layout, concurrency and $/Mtok.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from costsim.errors import CostsimError
from costsim.serving.plan import _powers_of_two
from costsim.serving.steps import StepModel
from costsim.serving.workload import Workload, capacity, run
from costsim.spec.deployment import Deployment
from costsim.spec.engine import EngineProfile, Speculation
from costsim.spec.hardware import HardwareProfile
from costsim.spec.layout import Layout
from costsim.spec.model import ModelSpec, MoEFFN

LEVELS = 32  # concurrency levels per layout, log-spaced from 1 to the pool's capacity


def frontier_layouts(spec: ModelSpec, hw: HardwareProfile, max_devices: int) -> list[Layout]:
    moe = any(isinstance(f, MoEFFN) for f, _ in spec.ffn_groups)
    out = []
    for tp in _powers_of_two(min(max_devices, hw.scale_up_domain)):
        for pp in _powers_of_two(max_devices // tp):
            for ep in sorted({1, tp} if moe else {1}):
                out.append(Layout(tp=tp, pp=pp, ep=ep))
    return out


def pareto(users: np.ndarray, per_device: np.ndarray) -> np.ndarray:
    """Mask of the points no other point beats on both axes (higher is better on each)."""
    order = np.lexsort((-per_device, -users))  # by tokens/s per user, best first
    keep = np.zeros(users.shape, dtype=bool)
    best = -np.inf
    for i in order:
        if per_device[i] > best:
            keep[i] = True
            best = per_device[i]
    return keep


def frontier_for(spec: ModelSpec, hw: HardwareProfile, dep: Deployment, engine: EngineProfile, isl: int,
                 osl: int, max_devices: int, method: Speculation | None = None) -> dict[str, Any]:
    points: dict[str, list[Any]] = {k: [] for k in ("layout", "devices", "concurrency", "tokens_per_s_per_user",
                                                    "output_tokens_per_s_per_device", "usd_per_mtok_output",
                                                    "ttft_p50_s", "tpot_p50_s")}
    tried, refused = 0, []
    for layout in frontier_layouts(spec, hw, max_devices):
        try:
            model = StepModel(spec, hw, dep, layout, engine)
        except CostsimError as exc:
            refused.append({"layout": layout.label(), "reason": str(exc)})
            continue
        tried += 1
        cap = capacity(model, isl, osl)
        if cap < 1:
            continue
        levels = np.unique(np.round(np.geomspace(1.0, cap, num=min(LEVELS, int(cap)))))
        res = run(model, Workload(isl, osl, concurrency=levels), method)
        n = len(levels)
        points["layout"] += [layout.label()] * n
        points["devices"] += [layout.devices_per_replica] * n
        points["concurrency"] += levels.tolist()
        points["tokens_per_s_per_user"] += res["tokens_per_s_per_user"].tolist()
        points["output_tokens_per_s_per_device"] += res["output_tokens_per_s_per_device"].tolist()
        points["usd_per_mtok_output"] += res["usd_per_mtok_output"].tolist()
        points["ttft_p50_s"] += res["ttft_s"]["p50"].tolist()
        points["tpot_p50_s"] += res["tpot_s"]["p50"].tolist()
    out: dict[str, Any] = {"hardware": hw.name, "layouts_tried": tried, "refused": refused, **hw.evidence_fields()}
    if not points["layout"] and refused and not tried:
        out.update(points=0, frontier=[], reason=refused[0]["reason"].removeprefix("--engine: "))
        return out
    if not points["layout"]:
        out.update(points=0, frontier=[], reason=f"{spec.name} fits no layout of up to {max_devices} {hw.name} "
                   f"under {engine.name}'s memory rule; raise --max-devices or use --weight-dtype fp8")
        return out
    users = np.asarray(points["tokens_per_s_per_user"])
    per_device = np.asarray(points["output_tokens_per_s_per_device"])
    mask = pareto(users, per_device)
    rows = [dict(zip(points, values, strict=True)) for values in zip(*points.values(), strict=True)]
    out["points"] = len(rows)
    out["frontier"] = sorted((r for r, m in zip(rows, mask, strict=True) if m),
                             key=lambda r: r["tokens_per_s_per_user"])
    return out


def frontier(spec: ModelSpec, hardware: list[HardwareProfile], dep: Deployment, engine: EngineProfile, isl: int,
             osl: int, max_devices: int = 8, method: Speculation | None = None) -> dict[str, Any]:
    return {"model": spec.name, "engine": engine.name, "isl": isl, "osl": osl, "max_devices": max_devices,
            "hardware": [frontier_for(spec, hw, dep, engine, isl, osl, max_devices, method) for hw in hardware]}
