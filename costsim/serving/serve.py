"""`costsim serve`: a model on a layout of devices, served by an engine, under a request workload.

One row per load level (the JSON contract in docs/serving.md), computed from columns: the workload's
arrays come back from serving/workload.py and are split into rows only at the end. A configuration
that cannot run (the model does not fit the engine's pool, the request rate exceeds what the layout
serves) carries nulls for times and dollars and a `reason` that says what would work.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from costsim.errors import CostsimError
from costsim.serving.engines import attention_evidence
from costsim.serving.memory import pool_breakdown
from costsim.serving.plan import enumerate_layouts
from costsim.serving.steps import StepModel
from costsim.serving.workload import Workload, run
from costsim.spec.deployment import Deployment
from costsim.spec.engine import EngineProfile, Speculation
from costsim.spec.hardware import HardwareProfile
from costsim.spec.layout import Layout
from costsim.spec.model import ModelSpec

TIMES = ("ttft_s", "tpot_s", "itl_s")
NULL_WHEN_IMPOSSIBLE = ("output_tokens_per_s", "output_tokens_per_s_per_device", "total_tokens_per_s",
                        "tokens_per_s_per_user", "requests_per_s", "request_latency_s", "usd_per_mtok_output",
                        "usd_per_mtok_input", *TIMES)


def speculation_for(engine: EngineProfile, name: str | None) -> Speculation | None:
    if name is None or name.strip().lower() in ("", "none", "off"):
        return None
    key = name.strip().lower()
    if key not in engine.speculation:
        known = ", ".join(engine.speculation) or "none"
        raise CostsimError(f"--speculative: {engine.name} has no method '{name}'; its methods: {known}")
    return engine.speculation[key]


def fewest_devices(spec: ModelSpec, hw: HardwareProfile, dep: Deployment, engine: EngineProfile, isl: int,
                   osl: int, max_devices: int = 72) -> Layout | None:
    """The smallest layout (fewest devices, then tensor parallel first) whose pool holds one request."""
    from costsim.serving.workload import capacity

    for layout in sorted(enumerate_layouts(spec, hw, max_devices), key=lambda x: (x.devices, -x.tp, x.pp)):
        if layout.ep > 1:
            continue
        try:
            if capacity(StepModel(spec, hw, dep, layout, engine), isl, osl) >= 1:
                return layout
        except CostsimError:
            continue
    return None


def _evidence(model: StepModel, spec: ModelSpec, hw: HardwareProfile) -> dict[str, Any]:
    weights = model.sh.weights
    return {
        "attention": attention_evidence(model.engine, spec, hw),
        "hardware_calibration": hw.sources.get("efficiency", "no fit recorded: literature defaults"),
        "kv_pool": pool_breakdown(model.engine, hw, model.sh.stages[0], weights, model.p),
    }


def serve(spec: ModelSpec, hw: HardwareProfile, dep: Deployment, layout: Layout, engine: EngineProfile,
          work: Workload, speculative: str | None = None) -> list[dict[str, Any]]:
    """Rows of the serve contract, one per load level of `work`."""
    method = speculation_for(engine, speculative)
    model = StepModel(spec, hw, dep, layout, engine)
    res = run(model, work, method)
    loads = _loads(work)
    base = {"model": spec.name, "hardware": hw.name, "engine": engine.name, "engine_version": engine.version,
            "devices": layout.devices_per_replica, "layout": layout.as_dict(), "isl": work.isl, "osl": work.osl,
            "weight_dtype": dep.weights, "kv_dtype": dep.kv_cache, "speculative": speculative if method else None,
            "capacity_sequences": res["capacity"], "evidence": _evidence(model, spec, hw)}
    if not res["fits_memory"]:
        need = fewest_devices(spec, hw, dep, engine, work.isl, work.osl)
        fix = (f"it needs at least {need.devices} devices ({need.label()})" if need is not None else
               "no layout up to 72 devices holds it; try --weight-dtype fp8 or a larger device")
        reason = (f"does not fit: {engine.name}'s KV pool on {hw.name} x {layout.devices_per_replica} "
                  f"({layout.label()}) holds no request of {work.isl + work.osl:,} tokens; {fix}")
        return [{**base, **_load_fields(work, load), "fits_memory": False, "batch": 0,
                 **dict.fromkeys(NULL_WHEN_IMPOSSIBLE), "reason": reason} for load in loads]
    if "refused" in res:
        return [{**base, **_load_fields(work, load), "fits_memory": True, "batch": 0,
                 **dict.fromkeys(NULL_WHEN_IMPOSSIBLE), "reason": res["refused"]} for load in loads]
    rows = []
    for i, load in enumerate(loads):
        row: dict[str, Any] = {**base, **_load_fields(work, load), "fits_memory": True,
                               "batch": float(res["batch"][i]), "decoding_sequences": float(res["decoding"][i])}
        for key in ("output_tokens_per_s", "output_tokens_per_s_per_device", "total_tokens_per_s",
                    "tokens_per_s_per_user", "requests_per_s", "request_latency_s", "usd_per_mtok_output",
                    "usd_per_mtok_input", "mixed_step_fraction", "prefill_share_of_time"):
            row[key] = float(res[key][i])
        for key in TIMES:
            row[key] = {stat: float(v[i]) for stat, v in res[key].items()}
        if not np.isfinite(row["ttft_s"]["mean"]):
            top = float(res["output_tokens_per_s"][i]) / work.osl
            row.update({"saturated": True, "ttft_s": None, "request_latency_s": None,
                        "reason": f"saturated: {load:g} requests/s exceeds the {top:.3g} requests/s this layout "
                                  f"serves; the queue and TTFT grow without bound; lower the rate or add replicas "
                                  f"(dp)"})
        rows.append(row)
    return rows


def _loads(work: Workload) -> list[float]:
    if work.kind == "concurrency":
        return [float(x) for x in np.atleast_1d(work.concurrency)]
    if work.kind == "request_rate":
        return [float(x) for x in np.atleast_1d(work.request_rate)]
    return [float(work.offline_requests or 1)]


def _load_fields(work: Workload, load: float) -> dict[str, Any]:
    if work.kind == "concurrency":
        return {"concurrency": int(load)}
    if work.kind == "request_rate":
        return {"request_rate": load, "concurrency": None}
    return {"offline": True, "requests": int(load), "concurrency": None}


def engine_point(spec: ModelSpec, hw: HardwareProfile, dep: Deployment, engine: EngineProfile, context: int,
                 batch: int | None, tpot_target_s: float | None, *, decode_context: float | None = None,
                 prompt: int | None = None) -> dict[str, Any]:
    """`costsim estimate --engine`: one decode batch at one context as the engine runs it on one device (its
    pool and max_num_seqs cap the batch, its kernel list and CPU time price the step, its TTFT floor adds
    to the prefill). The keys `estimate` reports, replaced. The pool and the batch are sized for `context`
    tokens per sequence; the decode step is priced at `decode_context` and the prefill is of `prompt` tokens
    (both `context` unless given: a request prices them apart, engine_request)."""
    model = StepModel(spec, hw, dep, Layout(), engine)
    fit = float(model.max_sequences(float(context)))
    if batch is None and tpot_target_s is not None and fit >= 1:
        candidates = np.arange(1.0, fit + 1.0)
        ok = candidates[model.decode(float(context), candidates) <= tpot_target_s]
        batch = int(ok.max()) if ok.size else 1
    b = float(batch) if batch is not None else max(fit, 1.0)
    prompt = context if prompt is None else prompt
    tpot = float(model.decode(float(context if decode_context is None else decode_context), b))
    ttft = float(model.prefill(float(prompt))) + engine.overheads.ttft_floor_s
    decode_tps, prefill_tps = b / tpot, prompt / ttft
    out = {"engine": engine.name, "engine_version": engine.version, "batch": int(b), "max_batch": int(fit),
           "fits_memory": fit >= b and fit >= 1, "tpot_s": tpot, "ttft_s": ttft, "decode_tokens_per_s": decode_tps,
           "prefill_tokens_per_s": prefill_tps, "usd_per_mtok_output": model.usd_per_s / decode_tps * 1e6,
           "usd_per_mtok_input": model.usd_per_s / prefill_tps * 1e6, "evidence": _evidence(model, spec, hw)}
    if not out["fits_memory"]:
        for key in ("tpot_s", "ttft_s", "decode_tokens_per_s", "prefill_tokens_per_s", "usd_per_mtok_output",
                    "usd_per_mtok_input"):
            out[key] = None
        out["reason"] = (f"does not fit: {engine.name}'s KV pool holds {int(fit)} sequences of {context:,} tokens, "
                         f"{int(b)} asked; lower --batch, or see costsim plan / costsim serve --layout")
    return out


def engine_request(spec: ModelSpec, hw: HardwareProfile, dep: Deployment, engine: EngineProfile, prompt: int,
                   output: int, batch: int | None, tpot_target_s: float | None) -> dict[str, Any]:
    """`costsim estimate --prompt P --output-tokens O --engine E`: engine_point with the pool sized for P + O
    tokens per sequence, TTFT of the prompt (the engine's floor included), decode priced at the average
    context P + O / 2 (as costsim's own request mode), and the request's latency and dollars."""
    out = engine_point(spec, hw, dep, engine, prompt + output, batch, tpot_target_s,
                       decode_context=prompt + output / 2.0, prompt=prompt)
    if not out["fits_memory"]:
        out.update({"request_latency_s": None, "usd_per_request": None})
        return out
    out.update({"request_latency_s": out["ttft_s"] + output * out["tpot_s"],
                "usd_per_request": (prompt * out["usd_per_mtok_input"] + output * out["usd_per_mtok_output"]) / 1e6})
    return out
