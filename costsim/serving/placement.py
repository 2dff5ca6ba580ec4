"""Answers only for configurations that run: where a point that does not fit one device goes.

One rule behind `estimate`, `compare`, `sweep`, `scenario run` and `report` (docs/serving.md, "Answers
for configurations that run"):

- a point that fits one device is answered on one device;
- one that does not (the weights, or the asked batch, exceed what one device's pool holds) is answered on
  the cheapest parallel layout that fits, found by `plan`'s search up to `max_devices`, and labelled as
  such, with the fewest devices that would also do;
- with `single_device=True`, or where no layout up to `max_devices` fits, the times and dollars are null
  and the reason says how many devices it needs and which command to try.

A latency target that no batch meets is reported as unmet with the best value any batch achieves; a
context beyond the model's trained maximum is a warning, not an error.
"""

from __future__ import annotations

from typing import Any

from costsim.spec.deployment import Deployment
from costsim.spec.hardware import HardwareProfile
from costsim.spec.model import ModelSpec
from costsim.units import fmt_bytes

TIMED_KEYS = ("ttft_s", "tpot_s", "decode_tokens_per_s", "prefill_tokens_per_s", "usd_per_mtok_input",
              "usd_per_mtok_cached_input", "usd_per_mtok_output", "request_latency_s", "usd_per_request")


def context_warnings(spec: ModelSpec, context: float) -> list[str]:
    """A context beyond the model's trained maximum still has a cost, but the model was not trained for it."""
    if spec.max_context is not None and context > spec.max_context:
        return [f"--context {int(context):,} exceeds {spec.name}'s maximum of {spec.max_context:,} tokens "
                "(max_position_embeddings); the figures assume the architecture runs there unchanged"]
    return []


def plan_hint(model: str, hw: HardwareProfile, context: int, dep: Deployment) -> str:
    flags = "".join(f" --{name}-dtype {value}" for name, value, default in
                    (("weight", dep.weights, "bf16"), ("kv", dep.kv_cache, "bf16"), ("state", dep.state, "fp32"))
                    if value != default)
    return f"costsim plan -m {model} -H {hw.name} -c {context}{flags}"


def _search(spec: ModelSpec, hw: HardwareProfile, dep: Deployment, context: int, batch: int | None,
            tpot_target_s: float | None, engine: Any, max_devices: int) -> tuple[dict[str, Any] | None, dict]:
    """(the cheapest layout that fits at `batch` or the largest batch, or None; the plan searched)."""
    from costsim.serving.layouts import evaluate_layout
    from costsim.serving.plan import plan
    from costsim.spec.layout import Layout

    searched = plan(spec, hw, dep, context, tpot_target_s if batch is None else None, None, max_devices,
                    True, engine)
    feasible = [r for r in searched["feasible"] if r["devices"] > 1]
    if batch is None and not feasible and tpot_target_s is not None:
        # no layout meets the target: answer on the cheapest that fits, the target reported as unmet
        searched = plan(spec, hw, dep, context, None, None, max_devices, True, engine)
        feasible = [r for r in searched["feasible"] if r["devices"] > 1]
    if batch is not None:
        runs = [evaluate_layout(spec, hw, dep, Layout(**r["layout"]), context, batch, None, True, engine)
                for r in feasible if r["max_batch"] >= batch]
        feasible = sorted((r for r in runs if "reason" not in r), key=lambda r: r["usd_per_mtok_output"])
    if not feasible:
        return None, searched
    return min(feasible, key=lambda r: (r["usd_per_mtok_output"], r["devices"])), searched


def _smaller_dtype_hint(spec: ModelSpec, dep: Deployment, context: int) -> str:
    """fp8 for whichever of the weights and one sequence's cache is larger, if it is not already 8-bit or less."""
    from costsim.families import model_costs as mc

    weights = mc.weight_bytes(spec, dep.precision)
    cache = float(mc.cache_bytes(spec, float(context), dep.precision))
    if weights >= cache:
        return " or --weight-dtype fp8" if dep.weights in ("bf16", "fp16", "fp32") else ""
    return " or --kv-dtype fp8" if dep.kv_cache in ("bf16", "fp16", "fp32") else ""


def needs(spec: ModelSpec, hw: HardwareProfile, dep: Deployment, context: int, batch: int | None, engine: Any,
          max_devices: int, model_arg: str, found: tuple[dict[str, Any] | None, dict] | None = None) -> str:
    """'does not fit: needs >= N x H (try costsim plan ...)' for a point one device cannot hold; `found`: the
    search already run for this point (_search's answer), so it is not run again."""
    chosen, searched = found or _search(spec, hw, dep, context, batch, None, engine, max_devices)
    hint = plan_hint(model_arg, hw, context, dep)
    if chosen is None:
        what = "the weights and one sequence's cache" if batch is None else f"{batch:,} sequences"
        smaller = _smaller_dtype_hint(spec, dep, context).removeprefix(" or ")
        return (f"does not fit: no layout of up to {max_devices} x {hw.name} holds {what}; try "
                f"{smaller + ', ' if smaller else ''}a shorter context or a larger device (`{hint}` lists why)")
    fewest = min((r for r in searched["feasible"] if r["devices"] > 1), key=lambda r: r["devices"],
                 default=chosen)
    smaller = _smaller_dtype_hint(spec, dep, context)
    return f"does not fit: needs >= {max(fewest['devices'], 2)} x {hw.name} (try `{hint}`{smaller})"


def resolve(result: dict[str, Any], spec: ModelSpec, hw: HardwareProfile, dep: Deployment, context: int,
            batch: int | None, tpot_target_s: float | None, engine: Any, *, single_device: bool,
            max_devices: int, model_arg: str, request: bool) -> dict[str, Any]:
    """`estimate`'s single-device result made answerable: kept when it fits, else re-answered on the cheapest
    layout that fits (or nulled with the devices it needs); an unmet TPOT target and a context beyond the
    model's maximum become `warnings`."""
    out = dict(result)
    warnings = context_warnings(spec, context)
    if not out["fits_memory"]:
        for key in TIMED_KEYS:
            if key in out:
                out[key] = None
        found = None
        if not single_device and not request:
            # the target falls away inside the search when no layout meets it, so a miss here is a miss without it
            found = _search(spec, hw, dep, context, batch, tpot_target_s, engine, max_devices)
        chosen = None if found is None else found[0]
        if chosen is None:
            out["reason"] = needs(spec, hw, dep, context, batch, engine, max_devices, model_arg, found)
            if request and not single_device and "needs >=" in out["reason"]:
                out["reason"] += "; request mode runs on one device: give --context and --layout, or costsim serve"
        else:
            shortfall = f"does not fit: short by {fmt_bytes(out['memory_shortfall_bytes'])} for {out['batch']:,} " \
                        "sequence(s)"
            one = (out.get("reason") or "").split("; ")[0] or shortfall
            out.update({k: chosen[k] for k in ("batch", "max_batch", "ttft_s", "tpot_s", "decode_tokens_per_s",
                                               "prefill_tokens_per_s", "usd_per_mtok_input", "usd_per_mtok_output",
                                               "usd_per_mtok_cached_input")})
            out.update(fits_memory=True, devices=chosen["devices"], layout=chosen["layout"], label=chosen["label"],
                       weight_bytes_per_device=chosen["weight_bytes_per_device"],
                       cache_bytes_per_sequence_per_device=chosen["cache_bytes_per_sequence_per_device"],
                       tpot_batch1_s=chosen["tpot_batch1_s"], usd_per_hour=hw.usd_per_hour * chosen["devices"],
                       placement={"rule": "cheapest layout that fits", "single_device": one,
                                  "single_device_flag": "--single-device keeps one device"})
            out.pop("reason", None)
    timed = tpot_target_s is not None and batch is None and out.get("tpot_s") is not None
    if timed and out["tpot_s"] > tpot_target_s * (1 + 1e-9):
        best = out.get("tpot_batch1_s", out["tpot_s"])
        out["tpot_target_met"] = False
        warnings.append(f"--tpot-ms {tpot_target_s * 1e3:g}: unmet; no batch gets there on this configuration, "
                        f"the best is {best * 1e3:,.2f} ms per token (batch 1)")
    elif timed:
        out["tpot_target_met"] = True
    out["warnings"] = warnings
    return out
