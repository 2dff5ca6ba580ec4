"""One model's answer: `costsim estimate`, `plan`, `disaggregate`."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from costsim.cli.common import (
    DEFAULT_ESTIMATE_MODEL,
    DEFAULT_HARDWARE,
    ContextOpt,
    Dtype,
    EngineOpt,
    ExpertDtypeOpt,
    Format,
    FormatOpt,
    KvDtypeOpt,
    OutputOpt,
    PriceOpt,
    SingleDeviceOpt,
    StateDtypeOpt,
    WeightDtypeOpt,
    _render,
    _warn,
)


def estimate(
    model: Annotated[str, typer.Option("--model", "-m", help="preset or config.json")] = DEFAULT_ESTIMATE_MODEL,
    hardware: Annotated[str, typer.Option("--hardware", "-H", help="profile name or .toml path")] = DEFAULT_HARDWARE,
    context: ContextOpt = "32k",
    prompt: Annotated[str | None, typer.Option(help="request mode: prompt tokens (with --output-tokens)")] = None,
    output_tokens: Annotated[str | None, typer.Option(help="request mode: generated tokens")] = None,
    batch: Annotated[str, typer.Option(help="sequences per decode step, or 'auto' (largest that fits / meets "
                                            "--tpot-ms)")] = "auto",
    tpot_ms: Annotated[float | None, typer.Option("--tpot-ms", help="latency target per output token")] = None,
    price: PriceOpt = None,
    weight_dtype: WeightDtypeOpt = Dtype.bf16,
    kv_dtype: KvDtypeOpt = Dtype.bf16,
    state_dtype: StateDtypeOpt = Dtype.fp32,
    expert_dtype: ExpertDtypeOpt = None,
    layout: Annotated[str | None, typer.Option(help="several devices: tp=8,pp=2 (tp, cp, pp, ep, dp); "
                                                   "see costsim plan")] = None,
    single_device: SingleDeviceOpt = False,
    max_devices: Annotated[int, typer.Option(help="where one device does not hold it: the largest layout "
                                                  "considered")] = 72,
    engine: EngineOpt = "vllm",
    fmt: FormatOpt = Format.table,
    output: OutputOpt = None,
) -> None:
    """Time, memory and dollars per million tokens of one model on one accelerator at one context; where
    one device does not hold it, on the cheapest layout that does (--single-device: say what it needs)."""
    from costsim.api import estimate as run_estimate

    if layout is not None:
        from costsim.api import estimate_layout

        if prompt is not None or output_tokens is not None:
            from costsim.errors import CostsimError

            raise CostsimError("--layout works with --context (not request mode); drop --prompt/--output-tokens")
        res = estimate_layout(model, hardware, layout=layout, context=context, batch=batch, tpot_ms=tpot_ms,
                              price=price, weights=weight_dtype.value, kv_cache=kv_dtype.value,
                              state=state_dtype.value, engine=engine)
        _render(fmt, output, res, [_plan_row(res)], lambda: _plan_table([res], f"{res['model']} on "
                f"{res['hardware']} x {res['devices']} at {res['context_tokens']:,} tokens"))
        return
    result = run_estimate(model, hardware, context=context, batch=batch, tpot_ms=tpot_ms, price=price,
                          weights=weight_dtype.value, kv_cache=kv_dtype.value, state=state_dtype.value,
                          prompt=prompt, output_tokens=output_tokens, engine=engine, single_device=single_device,
                          max_devices=max_devices, experts=expert_dtype.value if expert_dtype else None)
    _render(fmt, output, result, [result], lambda: _estimate_table(result))
    _warn(result.get("warnings", []))


def _estimate_table(r: dict[str, Any]) -> str:
    from costsim.output.formats import dumps_table
    from costsim.units import fmt_bytes, fmt_duration

    placed = "placement" in r
    fit = "yes" if r["fits_memory"] else "NO (see below)"
    if placed:
        fit = f"yes, on {r['devices']} devices (one does not hold it)"

    def num(key: str, scale: float, fmt: str, unit: str = "") -> str:
        return "-" if r.get(key) is None else f"{r[key] * scale:{fmt}}{unit}"

    per_device = " per device" if placed else ""
    rows = [
        ["fits in memory", fit],
        ["max batch at this context", f"{r['max_batch']:,}"],
        ["batch", f"{r['batch']:,}" + (" (largest that fits)" if r.get("batch") == r.get("max_batch") else "")],
        ["weights" + per_device, fmt_bytes(r["weight_bytes_per_device"] if placed else r["weight_bytes"])],
        ["cache per sequence" + per_device,
         fmt_bytes(r["cache_bytes_per_sequence_per_device"] if placed else r["cache_bytes_per_sequence"])],
        ["TTFT (prefill)", fmt_duration(r.get("ttft_s"))],
        [f"TPOT (decode step, batch {r['batch']:,})", fmt_duration(r.get("tpot_s"))],
        ["decode tokens/s" + (" (system)" if placed else " (device)"), num("decode_tokens_per_s", 1, ",.0f")],
        ["prefill tokens/s", num("prefill_tokens_per_s", 1, ",.0f")],
        ["$ / Mtok input", num("usd_per_mtok_input", 1, ",.4f")],
        ["$ / Mtok cached input", num("usd_per_mtok_cached_input", 1, ",.5f")],
        ["$ / Mtok output", num("usd_per_mtok_output", 1, ",.4f")],
        ["price", f"{r['usd_per_hour']:.2f} USD/h"],
    ]
    if placed:
        rows.insert(1, ["layout", f"{r['label']} = {r['devices']} x {r['hardware']} (cheapest that fits)"])
    if r.get("tpot_target_met") is not None:
        rows.append(["TPOT target", "met" if r["tpot_target_met"] else "UNMET (see the warning)"])
    if r.get("engine"):
        rows.insert(0, ["engine", f"{r['engine']} {r['engine_version']}"])
    if "usd_per_request" in r:
        rows += [["request latency", fmt_duration(r.get("request_latency_s"))],
                 ["$ per request", num("usd_per_request", 1, ".6f")]]
    if r.get("calibration"):
        rows.append(["error band of times and $", r["calibration"]["label"]])
    title = f"{r['model']} on {r['hardware']} at {r['context_tokens']:,} tokens"
    if "prompt_tokens" in r:
        title += f" ({r['prompt_tokens']:,} prompt + {r['output_tokens']:,} output)"
    notes = []
    if r.get("reason"):
        notes.append(r["reason"])
    if placed:
        notes.append(f"one {r['hardware']}: {r['placement']['single_device']}; --single-device keeps one device")
    return dumps_table(["quantity", "value"], rows, title=title) + "".join(f"\n{n}" for n in notes)


PLAN_COLUMNS = ["layout", "devices", "fits", "batch", "TPOT", "TPOT@1", "TTFT", "$/Mtok out",
                "$/Mtok in", "weights/dev", "cache/seq/dev", "note"]


def _plan_row(r: dict[str, Any]) -> dict[str, Any]:
    keys = ("devices", "fits_memory", "batch", "max_batch", "tpot_s", "tpot_batch1_s", "ttft_s",
            "usd_per_mtok_output", "usd_per_mtok_input", "weight_bytes_per_device",
            "cache_bytes_per_sequence_per_device", "comm_share_of_tpot", "reason")
    return {"layout": r["label"], **r.get("layout", {}), **{k: r.get(k) for k in keys}}


def _plan_table(rows: list[dict[str, Any]], title: str) -> str:
    from costsim.output.formats import dumps_table
    from costsim.units import fmt_bytes, fmt_duration

    def cell(r: dict[str, Any], key: str, fmt: str) -> str:
        return format(r[key], fmt) if r.get(key) is not None else "-"

    body = [[r["label"], r["devices"], "yes" if r.get("fits_memory") else "no", r.get("batch", "-"),
             fmt_duration(r.get("tpot_s")), fmt_duration(r.get("tpot_batch1_s")), fmt_duration(r.get("ttft_s")),
             cell(r, "usd_per_mtok_output", ",.3f"), cell(r, "usd_per_mtok_input", ",.3f"),
             fmt_bytes(r["weight_bytes_per_device"]) if "weight_bytes_per_device" in r else "-",
             fmt_bytes(r["cache_bytes_per_sequence_per_device"]) if "cache_bytes_per_sequence_per_device" in r
             else "-", r.get("reason", "")] for r in rows]
    return dumps_table(PLAN_COLUMNS, body, title=title)


def plan(
    model: Annotated[str, typer.Option("--model", "-m", help="preset or config.json")] = "llama-3.1-70b",
    hardware: Annotated[str, typer.Option("--hardware", "-H", help="profile name or .toml path")] = DEFAULT_HARDWARE,
    context: ContextOpt = "128k",
    tpot_ms: Annotated[float | None, typer.Option("--tpot-ms", help="latency target per output token")] = None,
    ttft_s: Annotated[float | None, typer.Option("--ttft-s", help="latency target for the first token")] = None,
    max_devices: Annotated[int, typer.Option(help="largest layout to consider")] = 72,
    no_overlap: Annotated[bool, typer.Option("--no-overlap", help="do not hide ring-attention traffic "
                                                                  "behind compute")] = False,
    show: Annotated[int, typer.Option(help="feasible layouts listed in the table (cheapest first)")] = 10,
    price: PriceOpt = None,
    weight_dtype: WeightDtypeOpt = Dtype.bf16,
    kv_dtype: KvDtypeOpt = Dtype.bf16,
    state_dtype: StateDtypeOpt = Dtype.fp32,
    engine: EngineOpt = "vllm",
    fmt: FormatOpt = Format.table,
    output: OutputOpt = None,
) -> None:
    """Parallel layouts (tp, cp, pp, ep) of one model on up to --max-devices accelerators: the cheapest
    per output token, the fastest, the smallest, and why the others were rejected."""
    from costsim.api import plan as run_plan

    res = run_plan(model, hardware, context=context, tpot_ms=tpot_ms, ttft_s=ttft_s, max_devices=max_devices,
                   price=price, weights=weight_dtype.value, kv_cache=kv_dtype.value, state=state_dtype.value,
                   overlap=not no_overlap, engine=engine)
    rows = [_plan_row(r) for r in res["feasible"]] + [_plan_row(r) for r in res["rejected"]]

    def table() -> str:
        head = f"{res['model']} on {res['hardware']} at {res['context_tokens']:,} tokens"
        if "chosen" not in res:
            text = _plan_table(res["rejected"][:show], f"{head}: no layout works ({res['none_because']})")
            return text + f"\n\n{len(res['rejected'])} layouts rejected; raise --max-devices or relax the targets"
        picks = [dict(res[k], label=f"{k}: {res[k]['label']}") for k in ("chosen", "fastest", "fewest_devices")]
        text = _plan_table(picks, f"{head}: chosen = cheapest per output token")
        if res.get("calibration"):
            text += f"\nerror band of times and $: {res['calibration']['label']}"
        text += "\n\n" + _plan_table(res["feasible"][:show], f"{len(res['feasible'])} feasible layouts, "
                                                               f"cheapest first (top {show})")
        reasons: dict[str, int] = {}
        for r in res["rejected"]:
            key = r["reason"].split(":")[0]
            reasons[key] = reasons.get(key, 0) + 1
        text += "\n\nrejected: " + "; ".join(f"{n} x {k}" for k, n in sorted(reasons.items(), key=lambda x: -x[1]))
        return text

    _render(fmt, output, res, rows, table)


def disaggregate(
    model: Annotated[str, typer.Option("--model", "-m", help="preset or config.json")] = "llama-3.1-70b",
    hardware: Annotated[str, typer.Option("--hardware", "-H", help="profile name or .toml path")] = DEFAULT_HARDWARE,
    prompt: Annotated[str, typer.Option(help="prompt tokens per request")] = "32k",
    output_tokens: Annotated[str, typer.Option(help="generated tokens per request")] = "1k",
    prefill_layout: Annotated[str, typer.Option(help="layout of one prefill replica, e.g. tp=4")] = "tp=8",
    decode_layout: Annotated[str, typer.Option(help="layout of one decode replica, e.g. tp=8")] = "tp=8",
    tpot_ms: Annotated[float | None, typer.Option("--tpot-ms", help="latency target per output token")] = None,
    price: PriceOpt = None,
    weight_dtype: WeightDtypeOpt = Dtype.bf16,
    kv_dtype: KvDtypeOpt = Dtype.bf16,
    state_dtype: StateDtypeOpt = Dtype.fp32,
    engine: EngineOpt = "vllm",
    fmt: FormatOpt = Format.table,
    output: OutputOpt = None,
) -> None:
    """Prefill and decode on separate pools: pool sizes, KV transfer, TTFT, $ per request, vs colocated."""
    from costsim.api import disaggregate as run
    from costsim.output.formats import dumps_table
    from costsim.units import fmt_bytes

    r = run(model, hardware, prompt=prompt, output_tokens=output_tokens, prefill_layout=prefill_layout,
            decode_layout=decode_layout, tpot_ms=tpot_ms, price=price, weights=weight_dtype.value,
            kv_cache=kv_dtype.value, state=state_dtype.value, engine=engine)
    flat = {k: v for k, v in r.items() if not isinstance(v, dict)}
    for part in ("prefill", "decode", "colocated"):
        flat.update({f"{part}_{k}": v for k, v in r[part].items() if not isinstance(v, dict)})

    def table() -> str:
        p, d, c = r["prefill"], r["decode"], r["colocated"]
        rows = [["prefill replica", f"{p['label']} ({p['devices']} devices), {p['time_s']:,.2f} s per prompt"],
                ["decode replica", f"{d['label']} ({d['devices']} devices), batch {d['batch']:,}, "
                                   f"TPOT {d['tpot_s'] * 1e3:,.2f} ms, {d['requests_per_s']:,.3f} requests/s"],
                ["prefill replicas per decode replica", f"{p['replicas_per_decode_replica']:,.2f}"],
                ["KV transfer per request",
                 f"{fmt_bytes(r['kv_transfer_bytes'])} in {r['kv_transfer_s'] * 1e3:,.1f} ms"],
                ["TTFT (prefill + transfer)", f"{r['ttft_s']:,.2f} s   (colocated {c['ttft_s']:,.2f} s)"],
                ["$ per request", f"{r['usd_per_request']:,.5f}   (colocated {c['usd_per_request']:,.5f})"],
                ["$ / Mtok, prompt + output", f"{r['usd_per_mtok_blended']:,.4f}   (colocated "
                                              f"{c['usd_per_mtok_blended']:,.4f})"]]
        return dumps_table(["", "disaggregated"], rows, title=f"{r['model']} on {r['hardware']}: "
                           f"{r['prompt_tokens']:,} prompt + {r['output_tokens']:,} output tokens")

    _render(fmt, output, r, [flat], table)
