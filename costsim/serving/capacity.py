"""Serving on one device: memory fit, max batch, TTFT, TPOT, throughput, and dollars per token.

    usable memory = capacity x (1 - reserve) - weights
    max batch     = floor(usable / cache per sequence at the context)
    $/Mtok        = USD per hour / (tokens per hour) x 10^6
Input tokens are priced at the prefill throughput of one prompt of the given length; output
tokens at the decode throughput of the batch at the given context; cached input tokens (prefix
cache hits) at the time to read their cache entry once.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from costsim.engine.timing import decode_step_time, prefill_time
from costsim.families import model_costs as mc
from costsim.families.cost import ArrayLike, as_array
from costsim.spec.deployment import Deployment
from costsim.spec.hardware import HardwareProfile
from costsim.spec.model import ModelSpec

SECONDS_PER_HOUR = 3600.0


def usable_cache_bytes(spec: ModelSpec, hw: HardwareProfile, dep: Deployment) -> float:
    weights = mc.weight_bytes(spec, dep.precision)
    return hw.memory_bytes * dep.devices * (1.0 - dep.memory_reserve_fraction) - weights


def max_batch(spec: ModelSpec, hw: HardwareProfile, dep: Deployment, context: ArrayLike,
              cache_per_sequence: np.ndarray | None = None) -> np.ndarray:
    """Largest number of sequences of `context` tokens whose caches fit beside the weights."""
    if cache_per_sequence is None:
        cache_per_sequence = mc.cache_bytes(spec, as_array(context), dep.precision)
    per_seq = np.maximum(cache_per_sequence, 1.0)
    usable = usable_cache_bytes(spec, hw, dep)
    return np.where(usable > 0, np.floor(np.maximum(usable, 0.0) / per_seq), 0.0)


def usd_per_mtok(usd_per_hour: float, tokens_per_s: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore"):
        return np.where(tokens_per_s > 0, usd_per_hour / (tokens_per_s * SECONDS_PER_HOUR) * 1e6, np.inf)


def evaluate(spec: ModelSpec, hw: HardwareProfile, dep: Deployment, context: ArrayLike,
             batch: ArrayLike | None = None) -> dict[str, np.ndarray]:
    """Vectorised over context (and batch): every serving figure as an array. batch=None means
    the largest batch that fits (at least 1, flagged by fits_memory when even one does not)."""
    p = dep.precision
    t = as_array(context)
    cache = mc.cache_bytes(spec, t, p)
    fit = max_batch(spec, hw, dep, t, cache)
    b = np.maximum(fit, 1.0) if batch is None else as_array(batch) * np.ones_like(t)
    decode = decode_step_time(spec, hw, t, b, p, dep.cuda_graphs)
    prefill = prefill_time(spec, hw, t, 0, 1, p, dep.prefill_chunk_tokens)
    tpot = decode.total_s
    decode_tps = b / tpot
    prefill_tps = t / prefill.total_s
    price = hw.usd_per_hour * dep.devices
    # A prefix-cache hit skips prefill: what it still costs the device is reading the token's cache
    # entry (growing layers only) once, at the achieved bandwidth of large reads.
    per_token = mc.cache_bytes(spec, t + 1.0, p) - cache
    cached_tps = np.where(per_token > 0, hw.bandwidth_bytes_s * hw.efficiency.memory_max / np.maximum(per_token, 1.0),
                          np.inf)
    return {
        "batch": b,
        "max_batch": fit,
        "fits_memory": (fit >= b) & (fit >= 1),
        "ttft_s": prefill.total_s,
        "tpot_s": tpot,
        "decode_tokens_per_s": decode_tps,
        "prefill_tokens_per_s": prefill_tps,
        "usd_per_mtok_input": usd_per_mtok(price, prefill_tps),
        "usd_per_mtok_output": usd_per_mtok(price, decode_tps),
        "usd_per_mtok_cached_input": np.where(np.isfinite(cached_tps), usd_per_mtok(price, cached_tps), 0.0),
        "cache_bytes_per_sequence": cache,
    }


def estimate(spec: ModelSpec, hw: HardwareProfile, dep: Deployment, context: int,
             batch: int | None = None, tpot_target_s: float | None = None) -> dict[str, Any]:
    """One point, as the `costsim estimate` JSON contract (docs/contracts.md)."""
    p = dep.precision
    if batch is None and tpot_target_s is not None:
        batch = _largest_batch_meeting(spec, hw, dep, context, tpot_target_s)
    point = {k: np.asarray(v).item() for k, v in evaluate(spec, hw, dep, context, batch).items()}
    b = point["batch"]
    counts = mc.param_counts(spec)
    decode = mc.decode_cost(spec, context, b, p).total
    usable = usable_cache_bytes(spec, hw, dep)
    out: dict[str, Any] = {
        "model": spec.name,
        "hardware": hw.name,
        "context_tokens": context,
        "batch": int(b),
        "params_total": counts.total,
        "params_active": counts.active,
        "weight_bytes": mc.weight_bytes(spec, p),
        "cache_bytes_per_sequence": point["cache_bytes_per_sequence"],
        "cache_bytes_by_kind": {k: float(v) for k, v in mc.cache_bytes_by_kind(spec, context, p).items()},
        "prefill_flops": float(mc.prefill_cost(spec, context, 0, 1, p).total.flops),
        "decode_flops_per_token": float(mc.decode_cost(spec, context, 1, p).total.flops),
        "decode_bytes_per_step": float(decode.bytes_total),
        **{k: point[k] for k in ("ttft_s", "tpot_s", "decode_tokens_per_s", "prefill_tokens_per_s",
                                 "usd_per_mtok_input", "usd_per_mtok_cached_input", "usd_per_mtok_output")},
        "max_batch": int(point["max_batch"]),
        "fits_memory": bool(point["fits_memory"]),
        # how much more memory the batch's caches at this context would need; 0 when they fit
        "memory_shortfall_bytes": float(max(0.0, max(b, 1.0) * point["cache_bytes_per_sequence"] - usable)),
        "usd_per_hour": hw.usd_per_hour * dep.devices,
        "deployment": dep.model_dump(),
    }
    return out


def estimate_request(spec: ModelSpec, hw: HardwareProfile, dep: Deployment, prompt: int, output: int,
                     batch: int | None = None, tpot_target_s: float | None = None) -> dict[str, Any]:
    """A request of `prompt` input and `output` generated tokens: memory sized for the full
    prompt + output, TTFT of the prompt, decode priced at the average context prompt + output/2."""
    full = estimate(spec, hw, dep, prompt + output, batch, tpot_target_s)
    b = full["batch"]
    average = prompt + output / 2.0
    decode = evaluate(spec, hw, dep, average, b)
    prefill = evaluate(spec, hw, dep, float(prompt), b)
    tpot = float(decode["tpot_s"])
    ttft = float(prefill["ttft_s"])
    out_price = float(decode["usd_per_mtok_output"])
    in_price = float(prefill["usd_per_mtok_input"])
    full.update({
        "prompt_tokens": prompt,
        "output_tokens": output,
        "ttft_s": ttft,
        "tpot_s": tpot,
        "decode_tokens_per_s": b / tpot,
        "prefill_tokens_per_s": float(prefill["prefill_tokens_per_s"]),
        "usd_per_mtok_input": in_price,
        "usd_per_mtok_output": out_price,
        "request_latency_s": ttft + output * tpot,
        "usd_per_request": (prompt * in_price + output * out_price) / 1e6,
    })
    return full


def _largest_batch_meeting(spec: ModelSpec, hw: HardwareProfile, dep: Deployment, context: int,
                           target_s: float) -> int:
    fit = int(max_batch(spec, hw, dep, context))
    if fit < 1:
        return 1
    candidates = np.arange(1, fit + 1, dtype=np.float64)
    tpot = decode_step_time(spec, hw, float(context), candidates, dep.precision, dep.cuda_graphs).total_s
    ok = candidates[tpot <= target_s]
    return int(ok.max()) if ok.size else 1
