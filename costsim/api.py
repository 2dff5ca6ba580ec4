"""The public Python API: the same things the CLI does, as functions returning plain data."""

from __future__ import annotations

from typing import Any

from costsim.analysis.inspection import inspect_model
from costsim.families import model_costs
from costsim.inputs.models import load_model, presets
from costsim.spec.model import ModelSpec


def list_models() -> list[dict[str, Any]]:
    """The presets: name, layer count and mix, parameters total and active, source file."""
    rows = []
    for preset in presets():
        spec = load_model(preset.name)
        counts = model_costs.param_counts(spec)
        rows.append({
            "name": preset.name,
            "num_layers": spec.num_layers,
            "layer_mix": spec.layer_mix(),
            "params_total": counts.total,
            "params_active": counts.active,
            "file": preset.path.name,
        })
    return rows


def list_hardware() -> list[dict[str, Any]]:
    """The accelerator profiles: peaks, memory, bandwidth, price, and what their timing rests on (calibration
    status and error band)."""
    from costsim.inputs.hardware import hardware_names, load_hardware

    rows = []
    for name in hardware_names():
        hw = load_hardware(name)
        rows.append({
            "name": hw.name, "display_name": hw.display_name, "vendor": hw.vendor,
            "bf16_dense_tflops": hw.dense_tflops.get("bf16", hw.dense_tflops.get("fp16")),
            "fp8_dense_tflops": hw.dense_tflops.get("fp8"), "memory_gb": hw.memory_gb,
            "hbm_bandwidth_tb_s": hw.hbm_bandwidth_tb_s, "usd_per_hour": hw.usd_per_hour,
            "price_date": hw.price_date, "calibration": hw.calibration.status, "error_band": hw.calibration.error_band,
        })
    return rows


def check_positive(name: str, value: float | None, unit: str = "") -> None:
    """A finite positive number, or absent: the one-line error names the option."""
    import math

    from costsim.errors import CostsimError

    if value is not None and not (value > 0 and math.isfinite(value)):
        raise CostsimError(f"{name}: must be a finite positive number{unit}, got {value}")


def check_price(price: float | None) -> None:
    check_positive("--price", price, " of USD per hour")


def check_max_devices(max_devices: int) -> None:
    """The largest layout a search considers: 1 to 4096 devices."""
    from costsim.errors import CostsimError

    if not 1 <= max_devices <= 4096:
        raise CostsimError(f"--max-devices: must be between 1 and 4096, got {max_devices}")


def _engine_for(engine: Any, spec: ModelSpec, hw: Any) -> Any:
    """The engine profile, refused in one line where it does not serve this model or device; None or 'none':
    costsim's own kernel list (None returned)."""
    from costsim.inputs.engines import engine_or_none
    from costsim.serving.engines import check_serves

    profile = engine_or_none(engine)
    if profile is not None:
        check_serves(profile, spec, hw)
    return profile


def estimate(model: str | ModelSpec = "llama-3.1-8b", hardware: str = "h100-sxm", *, context: int | str = 32768,
             batch: int | str | None = "auto", tpot_ms: float | None = None, price: float | None = None,
             weights: str = "bf16", kv_cache: str = "bf16", state: str = "fp32",
             prompt: int | str | None = None, output_tokens: int | str | None = None,
             engine: Any = "vllm", single_device: bool = False, max_devices: int = 72,
             experts: str | None = None) -> dict[str, Any]:
    """The `costsim estimate` result as a dict (keys of the JSON contract in docs/contracts.md); the batch, step
    times and dollars are `engine`'s (vllm by default, as on the command line; sglang, trtllm, pytorch-eager
    or a profile .toml); None or 'none' is costsim's own kernel list and 10% reserve (`--engine none`). A
    point one device cannot hold is answered on the cheapest layout up to `max_devices` that fits
    (`placement`, `layout`, `devices` say so); with `single_device=True` its times and dollars are null and
    `reason` says how many devices it needs. `warnings` lists an unmet --tpot-ms and a context beyond the
    model's maximum."""
    from costsim.errors import CostsimError
    from costsim.inputs.hardware import load_hardware
    from costsim.serving.capacity import estimate as serve
    from costsim.serving.capacity import estimate_request
    from costsim.serving.placement import resolve
    from costsim.spec.deployment import Deployment
    from costsim.units import parse_tokens

    spec = model if isinstance(model, ModelSpec) else load_model(model)
    check_price(price)
    check_positive("--tpot-ms", tpot_ms, " of milliseconds")
    check_max_devices(max_devices)
    hw = load_hardware(hardware, usd_per_hour=price)
    n = parse_tokens(context, "--context")
    b: int | None
    b = None if batch is None or str(batch).strip().lower() == "auto" else parse_tokens(batch, "--batch")
    dep = Deployment(weights=weights, kv_cache=kv_cache, state=state, experts=experts)
    target = None if tpot_ms is None else tpot_ms / 1e3
    eng = _engine_for(engine, spec, hw)
    if prompt is not None or output_tokens is not None:
        if prompt is None or output_tokens is None:
            raise CostsimError("--prompt and --output-tokens go together; give both (or neither, and --context)")
        p_tokens = parse_tokens(prompt, "--prompt")
        o_tokens = parse_tokens(output_tokens, "--output-tokens")
        result = estimate_request(spec, hw, dep, p_tokens, o_tokens, b, target)
        if eng is not None:
            from costsim.serving.serve import engine_request

            result.update(engine_request(spec, hw, dep, eng, p_tokens, o_tokens, b, target))
        n = p_tokens + o_tokens
    else:
        result = serve(spec, hw, dep, n, b, target)
        if eng is not None:
            from costsim.serving.serve import engine_point

            result.update(engine_point(spec, hw, dep, eng, n, b, target))
    name = model if isinstance(model, str) else spec.name
    answer = resolve(result, spec, hw, dep, n, b, target, eng, single_device=single_device, max_devices=max_devices,
                     model_arg=name, request=prompt is not None)
    return {**answer, **hw.evidence_fields()}


def plan(model: str | ModelSpec = "llama-3.1-70b", hardware: str = "h100-sxm", *, context: int | str = 131072,
         tpot_ms: float | None = None, ttft_s: float | None = None, max_devices: int = 72,
         price: float | None = None, weights: str = "bf16", kv_cache: str = "bf16", state: str = "fp32",
         overlap: bool = True, engine: Any = "vllm") -> dict[str, Any]:
    """The `costsim plan` result: every parallel layout up to max_devices, the cheapest per output Mtok
    ("chosen"), the fastest and the smallest that fit and meet the targets, and the rejected ones; with
    `engine`, each layout's pool, kernels and CPU time are that engine's."""
    from costsim.inputs.hardware import load_hardware
    from costsim.serving.plan import plan as run_plan
    from costsim.spec.deployment import Deployment
    from costsim.units import parse_tokens

    spec = model if isinstance(model, ModelSpec) else load_model(model)
    check_price(price)
    check_positive("--tpot-ms", tpot_ms, " of milliseconds")
    check_positive("--ttft-s", ttft_s, " of seconds")
    check_max_devices(max_devices)
    hw = load_hardware(hardware, usd_per_hour=price)
    dep = Deployment(weights=weights, kv_cache=kv_cache, state=state)
    eng = _engine_for(engine, spec, hw)
    result = run_plan(spec, hw, dep, parse_tokens(context, "--context"),
                      None if tpot_ms is None else tpot_ms / 1e3, ttft_s, max_devices, overlap, eng)
    result = {**result, **hw.evidence_fields()}
    return result if eng is None else {**result, "engine": eng.name}


def estimate_layout(model: str | ModelSpec = "llama-3.1-70b", hardware: str = "h100-sxm", *,
                    layout: str = "tp=8", context: int | str = 32768, batch: int | str | None = "auto",
                    tpot_ms: float | None = None, price: float | None = None, weights: str = "bf16",
                    kv_cache: str = "bf16", state: str = "fp32", overlap: bool = True,
                    engine: Any = "vllm") -> dict[str, Any]:
    """One model on several devices with the given layout ('tp=8,pp=2'): memory, TPOT, TTFT, $/Mtok."""
    from costsim.inputs.hardware import load_hardware
    from costsim.serving.layouts import evaluate_layout
    from costsim.spec.deployment import Deployment
    from costsim.spec.layout import parse_layout
    from costsim.units import parse_tokens

    spec = model if isinstance(model, ModelSpec) else load_model(model)
    check_price(price)
    check_positive("--tpot-ms", tpot_ms, " of milliseconds")
    hw = load_hardware(hardware, usd_per_hour=price)
    b = None if batch is None or str(batch).strip().lower() == "auto" else parse_tokens(batch, "--batch")
    dep = Deployment(weights=weights, kv_cache=kv_cache, state=state)
    result = evaluate_layout(spec, hw, dep, parse_layout(layout), parse_tokens(context, "--context"), b,
                             None if tpot_ms is None else tpot_ms / 1e3, overlap, _engine_for(engine, spec, hw))
    return {"model": spec.name, "hardware": hw.name, "context_tokens": parse_tokens(context, "--context"),
            **result}


def disaggregate(model: str | ModelSpec = "llama-3.1-70b", hardware: str = "h100-sxm", *, prompt: int | str = 32768,
                 output_tokens: int | str = 1024, prefill_layout: str = "tp=8", decode_layout: str = "tp=8",
                 tpot_ms: float | None = None, price: float | None = None, weights: str = "bf16",
                 kv_cache: str = "bf16", state: str = "fp32", engine: Any = "vllm") -> dict[str, Any]:
    """Prefill and decode on separate pools vs one colocated pool: pool sizes, KV transfer, $/request."""
    from costsim.inputs.hardware import load_hardware
    from costsim.serving.plan import disaggregated
    from costsim.spec.deployment import Deployment
    from costsim.spec.layout import parse_layout
    from costsim.units import parse_tokens

    spec = model if isinstance(model, ModelSpec) else load_model(model)
    check_price(price)
    check_positive("--tpot-ms", tpot_ms, " of milliseconds")
    hw = load_hardware(hardware, usd_per_hour=price)
    dep = Deployment(weights=weights, kv_cache=kv_cache, state=state)
    return disaggregated(spec, hw, dep, parse_tokens(prompt, "--prompt"),
                         parse_tokens(output_tokens, "--output-tokens"), parse_layout(prefill_layout),
                         parse_layout(decode_layout), None if tpot_ms is None else tpot_ms / 1e3,
                         engine=_engine_for(engine, spec, hw))


def _levels(text: Any, field: str, *, whole: bool) -> list[float]:
    """'1,8,64' or a list -> positive numbers, at most 10,000 of them; one-line errors name the option."""
    import math

    from costsim.errors import CostsimError

    parts = text if isinstance(text, list | tuple) else [p for p in str(text).split(",") if p.strip()]
    if not parts:
        raise CostsimError(f"{field}: empty; give e.g. 1,8,64")
    if len(parts) > 10_000:
        raise CostsimError(f"{field}: {len(parts):,} levels; give at most 10,000")
    out = []
    for part in parts:
        try:
            value = float(part)
        except (TypeError, ValueError):
            raise CostsimError(f"{field}: '{part}' is not a number; give e.g. 1,8,64") from None
        if not (value > 0 and math.isfinite(value)) or (whole and not value.is_integer()):
            kind = "whole number" if whole else "number"
            raise CostsimError(f"{field}: must be a positive {kind}, got {part}")
        if value > 1e9:
            raise CostsimError(f"{field}: {part} is beyond any deployment; give at most 1e9")
        out.append(value)
    return out


def serve(model: str | ModelSpec = "llama-3.1-8b", hardware: str = "h100-sxm", *, engine: Any = "vllm",
          layout: str | None = None, isl: int | str = 1024, osl: int | str = 1024,
          concurrency: Any = None, request_rate: Any = None, offline: bool = False, requests: int | str = 1000,
          speculative: str | None = None, price: float | None = None, weights: str = "bf16",
          kv_cache: str = "bf16", state: str = "fp32", experts: str | None = None) -> list[dict[str, Any]]:
    """The `costsim serve` rows: one per load level (concurrency N users, a Poisson request rate, or an
    offline batch of requests), with throughput per device and per user, TTFT / TPOT / ITL (mean, p50,
    p99) and $/Mtok, as the engine's step loop gives them (docs/serving.md)."""
    import numpy as np

    from costsim.errors import CostsimError
    from costsim.inputs.engines import step_loop_engine
    from costsim.inputs.hardware import load_hardware
    from costsim.serving.serve import serve as run_serve
    from costsim.serving.workload import Workload
    from costsim.spec.deployment import Deployment
    from costsim.spec.layout import Layout, parse_layout
    from costsim.units import parse_tokens

    spec = model if isinstance(model, ModelSpec) else load_model(model)
    check_price(price)
    chosen = sum(x for x in (concurrency is not None, request_rate is not None, bool(offline)))
    if chosen != 1:
        raise CostsimError("serve: give exactly one of --concurrency N, --request-rate R or --offline "
                           "(--requests N)")
    prompt, out = parse_tokens(isl, "--isl"), parse_tokens(osl, "--osl")
    if prompt + out > 100_000_000:
        raise CostsimError(f"--isl/--osl: {prompt + out:,} tokens per request; at most 100M")
    hw = load_hardware(hardware, usd_per_hour=price)
    eng = step_loop_engine(engine, "serve")
    lay = parse_layout(layout) if layout else Layout()
    if concurrency is not None:
        work = Workload(prompt, out, concurrency=np.asarray(_levels(concurrency, "--concurrency", whole=True)))
    elif request_rate is not None:
        work = Workload(prompt, out, request_rate=np.asarray(_levels(request_rate, "--request-rate", whole=False)))
    else:
        n = parse_tokens(requests, "--requests")
        if n > 1e9:
            raise CostsimError(f"--requests: {n:,} is beyond any benchmark; give at most 1e9")
        work = Workload(prompt, out, offline_requests=n)
    dep = Deployment(weights=weights, kv_cache=kv_cache, state=state, experts=experts)
    evidence = hw.evidence_fields()
    return [{**row, **evidence} for row in run_serve(spec, hw, dep, lay, eng, work, speculative)]


def frontier(model: str | ModelSpec = "llama-3.1-70b", hardware: str = "h100-sxm,h200,b200", *,
             engine: Any = "vllm", isl: int | str = 1024, osl: int | str = 1024, max_devices: int = 8,
             speculative: str | None = None, weights: str = "bf16", kv_cache: str = "bf16",
             state: str = "fp32", experts: str | None = None) -> dict[str, Any]:
    """The throughput-interactivity frontier per hardware: the Pareto set of (tokens/s per user, output
    tokens/s per device) over layouts up to max_devices and concurrency levels, each with its $/Mtok."""
    from costsim.errors import CostsimError
    from costsim.inputs.engines import step_loop_engine
    from costsim.inputs.hardware import hardware_names, load_hardware
    from costsim.serving.frontier import frontier as run_frontier
    from costsim.serving.serve import speculation_for
    from costsim.spec.deployment import Deployment
    from costsim.units import parse_tokens

    spec = model if isinstance(model, ModelSpec) else load_model(model)
    if not 1 <= max_devices <= 72:
        raise CostsimError(f"--max-devices: must be between 1 and 72, got {max_devices}")
    names = hardware_names() if str(hardware).strip().lower() == "all" else \
        [h.strip() for h in str(hardware).split(",") if h.strip()]
    if not names:
        raise CostsimError("--hardware: empty; give e.g. h100-sxm,h200")
    eng = step_loop_engine(engine, "frontier")
    prompt, out = parse_tokens(isl, "--isl"), parse_tokens(osl, "--osl")
    if prompt + out > 100_000_000:
        raise CostsimError(f"--isl/--osl: {prompt + out:,} tokens per request; at most 100M")
    dep = Deployment(weights=weights, kv_cache=kv_cache, state=state, experts=experts)
    return run_frontier(spec, [load_hardware(n) for n in names], dep, eng, prompt, out, max_devices,
                        speculation_for(eng, speculative))


__all__ = ["disaggregate", "estimate", "estimate_layout", "frontier", "inspect_model", "list_hardware",
           "list_models", "load_model", "plan", "serve"]


def run_scenario(scenario: str, model: str = "llama-3.1-8b", hardware: str = "h100-sxm", *, samples: int = 1000,
                 seed: int = 0, api_prices: str | None = None, price: float | None = None, weights: str = "bf16",
                 kv_cache: str = "bf16", state: str = "fp32", utilisation: float = 1.0, layout: str | None = None,
                 single_device: bool = False, max_devices: int = 72,
                 engine: Any = "vllm") -> tuple[list[dict[str, Any]], list[tuple[str, Any]]]:
    """`costsim scenario run`: dollars, time and cache per task for every model x hardware pair (names
    comma-separated), on the cheapest layout that holds the task where one device does not (unless
    `single_device`), or on `layout`; `api_prices` adds providers' price sheets. Returns the rows and, for
    a chart, each configuration that holds the task with its TaskCost."""
    from costsim.analysis.sweeps import split_names
    from costsim.analysis.task_table import task_rows
    from costsim.errors import CostsimError
    from costsim.inputs.engines import engine_or_none
    from costsim.inputs.scenarios import load_scenario
    from costsim.spec.deployment import Deployment
    from costsim.spec.layout import parse_layout

    check_price(price)
    if not 1 <= samples <= 1_000_000:
        raise CostsimError(f"--samples: must be between 1 and 1,000,000, got {samples}")
    if not 0 < utilisation <= 1:
        raise CostsimError(f"--utilisation: must be in (0, 1], got {utilisation}")
    if not 0 <= seed < 2**63:
        raise CostsimError(f"--seed: must be a whole number from 0 to 2^63 - 1, got {seed}")
    sc = load_scenario(scenario)
    dep = Deployment(weights=weights, kv_cache=kv_cache, state=state).model_copy(update={"utilisation": utilisation})
    chosen = None if layout is None else parse_layout(layout)
    eng = engine_or_none(engine)
    sheets = split_names(api_prices, "--api-prices") if api_prices else None
    return task_rows(sc, scenario, split_names(model, "--model"), split_names(hardware, "--hardware"), dep, samples,
                     seed, eng, chosen, max_devices, single_device, price, sheets)

