"""The search over layouts: every layout up to a device count (enumerate_layouts), the cheapest per context
(best_layout_grid, `--plan auto`), `costsim plan`'s chosen / fastest / smallest, and disaggregated
prefill and decode pools (docs/deployments.md)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from costsim.engine import comm
from costsim.errors import CostsimError
from costsim.families import model_costs as mc
from costsim.serving.layouts import Replica, evaluate_layout, layout_grid
from costsim.spec.deployment import Deployment
from costsim.spec.hardware import HardwareProfile
from costsim.spec.layout import Layout
from costsim.spec.model import ModelSpec, MoEFFN


def best_layout_grid(spec: ModelSpec, hw: HardwareProfile, dep: Deployment, contexts: np.ndarray,
                     max_devices: int = 72, overlap: bool = True, engine: Any = None) -> dict[str, Any]:
    """Per context, the layout with the lowest $/Mtok output among those that fit (`--plan auto`):
    the sweep to 10M tokens shows devices needed and cost instead of 'does not fit'."""
    t = np.asarray(contexts, dtype=np.float64)
    best: dict[str, Any] | None = None
    labels = np.full(t.shape, "none", dtype=object)
    for layout in enumerate_layouts(spec, hw, max_devices):
        try:
            g = layout_grid(spec, hw, dep, layout, t, overlap, engine)
        except CostsimError:
            continue
        cost = np.where(g["fits_memory"], g["usd_per_mtok_output"], np.inf)
        if best is None:
            best = {k: np.array(v, dtype=np.float64) for k, v in g.items()}
            best["usd_per_mtok_output"] = cost
            labels[np.isfinite(cost)] = layout.label()
            continue
        better = cost < best["usd_per_mtok_output"]
        for k, v in g.items():
            best[k] = np.where(better, v if k != "usd_per_mtok_output" else cost, best[k])
        labels[better] = layout.label()
    if best is None:
        raise CostsimError(f"plan: no valid layout of {spec.name} on {hw.name}; check the model's head counts")
    best["fits_memory"] = np.isfinite(best["usd_per_mtok_output"])
    best["layout"] = labels
    return best


def _powers_of_two(limit: int) -> list[int]:
    return [2**i for i in range(int(math.log2(max(limit, 1))) + 1)]


def enumerate_layouts(spec: ModelSpec, hw: HardwareProfile, max_devices: int) -> list[Layout]:
    moe = any(isinstance(f, MoEFFN) for f, _ in spec.ffn_groups)
    layouts = []
    for tp in _powers_of_two(min(max_devices, hw.scale_up_domain)):
        for cp in _powers_of_two(max_devices // tp):
            room = min(max_devices // (tp * cp), spec.num_layers)
            # every stage count up to 16 (a model that needs 10 devices gets 10), powers of two beyond
            for pp in sorted(set(range(1, min(room, 16) + 1)) | set(_powers_of_two(room))):
                for ep in sorted({1, tp * cp} if moe and tp * cp <= hw.scale_up_domain else {1}):
                    layouts.append(Layout(tp=tp, cp=cp, pp=pp, ep=ep))
    return layouts


def plan(spec: ModelSpec, hw: HardwareProfile, dep: Deployment, context: int, tpot_target_s: float | None = None,
         ttft_target_s: float | None = None, max_devices: int = 72, overlap: bool = True,
         engine: Any = None) -> dict[str, Any]:
    """Every layout up to `max_devices`: the cheapest per output Mtok ("chosen"), the fastest and the
    one with the fewest devices among those that fit and meet the targets, and each rejected layout
    with its reason."""
    feasible, rejected = [], []
    for layout in enumerate_layouts(spec, hw, max_devices):
        try:
            r = evaluate_layout(spec, hw, dep, layout, context, None, tpot_target_s, overlap, engine)
        except CostsimError as exc:
            rejected.append({"layout": layout.as_dict(), "label": layout.label(), "devices": layout.devices,
                             "reason": str(exc).removeprefix("layout: ")})
            continue
        if "reason" not in r and ttft_target_s is not None and r["ttft_s"] > ttft_target_s:
            r["reason"] = f"misses the TTFT target: {r['ttft_s']:.2f} s > {ttft_target_s:.2f} s"
        (rejected if "reason" in r else feasible).append(r)
    result: dict[str, Any] = {"model": spec.name, "hardware": hw.name, "context_tokens": context,
                              "max_devices": max_devices, "feasible": sorted(feasible,
                                                                             key=lambda r: r["usd_per_mtok_output"]),
                              "rejected": rejected}
    if feasible:
        result["chosen"] = min(feasible, key=lambda r: (r["usd_per_mtok_output"], r["devices"]))
        # the lowest latency a user can get: one sequence per replica
        result["fastest"] = min(feasible, key=lambda r: (r["tpot_batch1_s"], r["devices"]))
        result["fewest_devices"] = min(feasible, key=lambda r: (r["devices"], r["usd_per_mtok_output"]))
    else:
        fits = [r for r in rejected if r.get("fits_memory")]
        why = ("no layout up to that many devices holds the weights and one sequence's cache" if not fits
               else "layouts that fit miss the latency targets")
        result["none_because"] = why
    return result


def disaggregated(spec: ModelSpec, hw: HardwareProfile, dep: Deployment, prompt: int, output: int,
                  prefill_layout: Layout, decode_layout: Layout, tpot_target_s: float | None = None,
                  overlap: bool = True, engine: Any = None) -> dict[str, Any]:
    """Prefill and decode on separate pools (DistServe / Dynamo style) against one colocated pool.

    Decode replicas run `decode_layout` at the largest batch that fits the full context (or meets the
    TPOT target); prefill replicas run `prefill_layout` one prompt at a time. The prompt's cache moves
    from the prefill to the decode replica over the scale-up links when both fit in one domain, else
    over the scale-out network, every sending device in parallel. Pools are sized so prefill keeps up
    with decode: prefill replicas per decode replica = decode request rate x prefill time. Colocated:
    the decode layout also prefills, and decode stops while it does (no chunked-prefill overlap)."""
    context = prompt + output
    dec = evaluate_layout(spec, hw, dep, decode_layout, context, None, tpot_target_s, overlap, engine)
    if "reason" in dec:
        raise CostsimError(f"disaggregate: the decode layout {decode_layout.label()} {dec['reason']}")
    pre_sh = Replica(spec, hw, dep, prefill_layout, overlap, engine=engine)
    if pre_sh.max_batch_at(np.asarray(float(prompt))) < 1:
        raise CostsimError(f"disaggregate: the prefill layout {prefill_layout.label()} cannot hold one prompt of "
                           f"{prompt:,} tokens; give it more devices (--prefill-layout)")
    ttft_p = float(pre_sh.ttft(np.asarray(float(prompt))))
    kv = float(mc.cache_bytes(spec, np.asarray(float(prompt)), dep.precision))
    senders = min(prefill_layout.devices_per_replica, decode_layout.devices_per_replica)
    span = prefill_layout.devices_per_replica + decode_layout.devices_per_replica
    if span > hw.scale_up_domain and hw.scale_out_gb_s <= 0:
        raise CostsimError(f"disaggregate: moving the cache between the prefill and decode replicas ({span} devices) "
                           f"{comm.no_scale_out(hw)}; give the two layouts at most {hw.scale_up_domain} devices "
                           "together")
    bw, lat = comm.link(hw, span)
    transfer = kv / (senders * bw) + lat
    per_request_decode_s = output * dec["tpot_s"] / dec["batch"]  # decode-replica seconds per request
    decode_rate = 1.0 / per_request_decode_s
    prefill_per_decode = decode_rate * ttft_p
    usd_s_p, usd_s_d = pre_sh.usd_s, dec["devices"] * hw.usd_per_hour / 3600.0 / dep.utilisation
    usd_request = usd_s_p * ttft_p + usd_s_d * per_request_decode_s
    colocated_ttft = float(Replica(spec, hw, dep, decode_layout, overlap, engine=engine).ttft(
        np.asarray(float(prompt))))
    colocated_usd = usd_s_d * (colocated_ttft + per_request_decode_s)
    tokens = prompt + output
    return {"model": spec.name, "hardware": hw.name, "prompt_tokens": prompt, "output_tokens": output,
            "prefill": {"layout": prefill_layout.as_dict(), "label": prefill_layout.label(),
                        "devices": prefill_layout.devices_per_replica, "time_s": ttft_p,
                        "replicas_per_decode_replica": prefill_per_decode},
            "decode": {"layout": decode_layout.as_dict(), "label": decode_layout.label(),
                       "devices": decode_layout.devices_per_replica, "batch": dec["batch"], "tpot_s": dec["tpot_s"],
                       "requests_per_s": decode_rate},
            "kv_transfer_bytes": kv, "kv_transfer_s": transfer,
            "devices_per_decode_replica_with_its_prefill_share":
                decode_layout.devices_per_replica + prefill_per_decode * prefill_layout.devices_per_replica,
            "ttft_s": ttft_p + transfer, "tpot_s": dec["tpot_s"],
            "usd_per_request": usd_request, "usd_per_mtok_blended": usd_request / tokens * 1e6,
            "colocated": {"ttft_s": colocated_ttft, "usd_per_request": colocated_usd,
                          "usd_per_mtok_blended": colocated_usd / tokens * 1e6}}
