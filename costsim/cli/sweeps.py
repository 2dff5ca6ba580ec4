"""Many answers at once: `costsim sweep`, `compare`, `crossover`."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from costsim.cli.common import (
    DEFAULT_HARDWARE,
    ContextOpt,
    Dtype,
    EngineOpt,
    Format,
    FormatOpt,
    KvDtypeOpt,
    LayoutOpt,
    MaxDevicesOpt,
    OutputOpt,
    PlanOpt,
    PriceOpt,
    SingleDeviceOpt,
    StateDtypeOpt,
    WeightDtypeOpt,
    _check_metric_and_price,
    _deployment,
    _engine,
    _layout_choice,
    _render,
    _write,
)
from costsim.errors import CostsimError


def crossover(
    model: Annotated[list[str], typer.Option("--model", "-m", help="two models: -m A -m B (or -m A,B)")] = [  # noqa: B006
        "qwen3-32b", "qwen3-next-80b-a3b"],
    hardware: Annotated[str, typer.Option("--hardware", "-H", help="profile name or .toml path")] = DEFAULT_HARDWARE,
    context: Annotated[str, typer.Option("--context", "-c", help="range to search, lo..hi")] = "1k..10M",
    metric: Annotated[str, typer.Option(help="what to compare (lower is better except tokens/s, batch)")]
    = "usd_per_mtok_output",
    layout: LayoutOpt = None,
    plan_mode: PlanOpt = None,
    plot: Annotated[str | None, typer.Option(help="write both curves and the crossing (HTML) here")] = None,
    price: PriceOpt = None,
    weight_dtype: WeightDtypeOpt = Dtype.bf16,
    kv_dtype: KvDtypeOpt = Dtype.bf16,
    state_dtype: StateDtypeOpt = Dtype.fp32,
    engine: EngineOpt = "vllm",
    fmt: FormatOpt = Format.table,
    output: OutputOpt = None,
) -> None:
    """The context length(s) where model B becomes cheaper or faster than model A on one accelerator
    (or one layout, or the cheapest layout per point with --plan auto)."""
    from costsim.analysis.crossover import crossover as run
    from costsim.analysis.sweeps import parse_context_range, split_names
    from costsim.output.formats import dumps_table

    names = [n for m in model for n in split_names(m, "--model")]
    if len(names) != 2:
        raise CostsimError(f"--model: give exactly two models (-m A -m B), got {len(names)}")
    bounds = parse_context_range(context, 2)
    if len(bounds) < 2:
        raise CostsimError("--context: give a range lo..hi, e.g. 1k..10M")
    chosen_layout, plan_auto = _layout_choice(layout, plan_mode, 72)
    _check_metric_and_price(metric, price)
    r = run(names[0], names[1], hardware, metric, float(bounds[0]), float(bounds[-1]),
            _deployment(weight_dtype, kv_dtype, state_dtype), chosen_layout, plan_auto, price,
            engine=_engine(engine))
    if plot:
        from costsim.analysis.crossover import crossover_figure
        from costsim.output.plots import write_html

        write_html(crossover_figure(r), plot)
    data = {k: v for k, v in r.items() if k not in ("contexts", "a", "b")}
    rows = [{"model_a": r["model_a"], "model_b": r["model_b"], "hardware": r["hardware"], "metric": metric, **c}
            for c in r["crossings"]]

    def table() -> str:
        title = f"{metric}: {r['model_b']} vs {r['model_a']} on {r['hardware']} ({r['layout']})"
        if not r["crossings"]:
            best = r["better_everywhere"]
            return title + (f"\nno crossing in {context}: {best} is better everywhere" if best else
                            f"\nneither model fits anywhere in {context}")
        return dumps_table(["crossing at (tokens)", "better below", "better above", "cause"],
                           [[f"{c['context_tokens']:,.0f}", c["better_below"], c["better_above"], c["cause"]]
                            for c in r["crossings"]], title=title)

    _render(fmt, output, data, rows, table)


def sweep(
    model: Annotated[str, typer.Option("--model", "-m", help="preset names, comma-separated")] = "llama-3.1-8b",
    hardware: Annotated[str, typer.Option("--hardware", "-H", help="profiles, comma-separated, or all")] = "h100-sxm",
    context: Annotated[str, typer.Option("--context", "-c", help="range lo..hi, e.g. 1k..10M")] = "1k..1M",
    points: Annotated[int, typer.Option(help="log-spaced contexts in the range")] = 40,
    metric: Annotated[str, typer.Option(help="what to chart and tabulate")] = "usd_per_mtok_output",
    batch: Annotated[str, typer.Option(help="sequences per decode step, or auto (largest that fits)")] = "auto",
    price: PriceOpt = None,
    weight_dtype: WeightDtypeOpt = Dtype.bf16,
    kv_dtype: KvDtypeOpt = Dtype.bf16,
    state_dtype: StateDtypeOpt = Dtype.fp32,
    plot: Annotated[str | None, typer.Option(help="write a plotly HTML chart here")] = None,
    layout: LayoutOpt = None,
    plan_mode: PlanOpt = None,
    max_devices: MaxDevicesOpt = 72,
    single_device: SingleDeviceOpt = False,
    engine: EngineOpt = "vllm",
    fmt: FormatOpt = Format.table,
    output: OutputOpt = None,
) -> None:
    """One metric vs context length for every model x hardware pair, in one vectorised call; where one
    device does not hold a point, the cheapest layout that does (--single-device: one device only)."""
    from costsim.analysis.sweeps import parse_context_range, split_names
    from costsim.analysis.sweeps import sweep as run_sweep
    from costsim.output.formats import dumps_csv, dumps_json
    from costsim.units import parse_tokens

    _check_metric_and_price(metric, price)
    contexts = parse_context_range(context, points)
    b = None if batch.strip().lower() == "auto" else parse_tokens(batch, "--batch")
    chosen_layout, plan_auto = _layout_choice(layout, plan_mode, max_devices)
    result = run_sweep(split_names(model, "--model"), split_names(hardware, "--hardware"), contexts,
                       _deployment(weight_dtype, kv_dtype, state_dtype), batch=b, price=price, layout=chosen_layout,
                       plan_auto=plan_auto, max_devices=max_devices, engine=_engine(engine),
                       single_device=single_device)
    if plot:
        from costsim.output.plots import sweep_figure, write_html

        write_html(sweep_figure(result, metric), plot)
    if fmt is Format.json:
        _write(dumps_json({"contexts": result.contexts, "metric": metric, "series": result.series}), output)
    elif fmt is Format.csv:
        cols = result.columns()
        rows = [dict(zip(cols, values, strict=True)) for values in zip(*cols.values(), strict=True)]
        _write(dumps_csv(rows), output)
    else:
        _write(_sweep_table(result, metric, plan_auto), output)


# per-token figures whose value depends on how many sequences share the step
BATCH_DEPENDENT = ("usd_per_mtok_output", "tpot_s", "decode_tokens_per_s")


def _sweep_table(result: Any, metric: str, plan_auto: bool) -> str:
    from costsim.output.formats import dumps_table
    from costsim.units import fmt_duration

    headers = ["context"] + [f"{s['model']} · {s['hardware']}" for s in result.series]
    body = []
    for i, t in enumerate(result.contexts):
        cells = []
        for s in result.series:
            if not s["fits_memory"][i]:
                cells.append("does not fit")
                continue
            value = float(s[metric][i])
            cell = fmt_duration(value) if metric.endswith("_s") else f"{value:.4g}"
            if metric in BATCH_DEPENDENT:
                cell += f" b={int(s['batch'][i]):,}"
            devices = int(s["devices"][i]) if "devices" in s else 1
            if plan_auto or devices > 1:
                cell += f" [{devices}: {s['layout'][i]}]"
            cells.append(cell)
        body.append([f"{int(t):,}", *cells])
    text = dumps_table(headers, body, title=f"{metric} vs context (b = batch; [N: layout] = devices per system)")
    if plan_auto:
        text += ("\n\n[N: layout]: the cheapest layout at that context; N changes where another layout's larger "
                 "batch or smaller share of the cache makes it cheaper per token")
    elif any(max(s.get("devices", [1])) > 1 for s in result.series):
        text += ("\n\n[N: layout]: one device does not hold that point; the cheapest layout that does "
                 "(--single-device: one device only)")
    return text


def compare(
    model: Annotated[str, typer.Option("--model", "-m", help="preset name or config.json")] = "llama-3.1-70b",
    hardware: Annotated[str, typer.Option("--hardware", "-H", help="profiles, comma-separated, or all")] = "all",
    context: ContextOpt = "32k",
    price: PriceOpt = None,
    weight_dtype: WeightDtypeOpt = Dtype.bf16,
    kv_dtype: KvDtypeOpt = Dtype.bf16,
    state_dtype: StateDtypeOpt = Dtype.fp32,
    metric: Annotated[str, typer.Option(help="metric for the chart")] = "usd_per_mtok_output",
    plot: Annotated[str | None, typer.Option(help="write a plotly bar chart (HTML) here")] = None,
    layout: LayoutOpt = None,
    plan_mode: PlanOpt = None,
    max_devices: MaxDevicesOpt = 72,
    single_device: SingleDeviceOpt = False,
    engine: EngineOpt = "vllm",
    fmt: FormatOpt = Format.table,
    output: OutputOpt = None,
) -> None:
    """One row per accelerator: fits, max batch, TTFT, TPOT, tokens/s, $/Mtok in and out."""
    from costsim.analysis.sweeps import compare as run_compare
    from costsim.analysis.sweeps import split_names
    from costsim.output.formats import dumps_csv, dumps_json
    from costsim.units import parse_tokens

    _check_metric_and_price(metric, price)
    chosen_layout, plan_auto = _layout_choice(layout, plan_mode, max_devices)
    rows = run_compare(model, split_names(hardware, "--hardware"), parse_tokens(context, "--context"),
                       _deployment(weight_dtype, kv_dtype, state_dtype), price=price, layout=chosen_layout,
                       plan_auto=plan_auto, max_devices=max_devices, engine=_engine(engine),
                       single_device=single_device)
    if plot:
        from costsim.output.plots import compare_figure, write_html

        write_html(compare_figure(rows, metric), plot)
    if fmt is Format.json:
        _write(dumps_json(rows), output)
    elif fmt is Format.csv:
        _write(dumps_csv(rows), output)
    else:
        _write(_compare_table(rows, engine, max_devices, explicit=chosen_layout is not None or plan_auto,
                              single_device=single_device), output)


def _band(r: dict[str, Any]) -> str:
    """'±12% (published)' or 'uncalibrated': the device's evidence in one cell (the label in full in JSON)."""
    cal = r.get("calibration") or {}
    if cal.get("error_band") is None:
        return "uncalibrated" if cal.get("status", "datasheet") == "datasheet" else f"{cal['status']}, no band"
    return f"±{cal['error_band']:.0%} ({cal['status']})"


def _compare_table(rows: list[dict[str, Any]], engine: str | None, max_devices: int, *, explicit: bool,
                   single_device: bool = False) -> str:
    """Devices where it runs first, cheapest output first; no serving figures where nothing runs."""
    from costsim.output.formats import dumps_table
    from costsim.units import fmt_duration

    ordered = sorted(rows, key=lambda r: (not r["fits_memory"], r["usd_per_mtok_output"]
                                          if r["fits_memory"] else 0.0))
    body, placed = [], False
    for r in ordered:
        name = r["hardware"]
        if r["fits_memory"] and (explicit or r["devices"] > 1):
            name = f"{name} x {int(r['devices'])} ({r['layout']})"
            placed = placed or (not explicit and r["devices"] > 1)
        if not r["fits_memory"]:
            if not r.get("reason") and not single_device:
                name = f"{name} (no layout up to {max_devices} devices)"
            body.append([name, "no", f"{int(r['max_batch']):,}", "-", "-", "-", "-", "-", "-", "-"])
            continue
        body.append([name, "yes", f"{int(r['max_batch']):,}", f"{int(r['batch']):,}", fmt_duration(r["ttft_s"]),
                     fmt_duration(r["tpot_s"]), f"{r['decode_tokens_per_s']:,.0f}", f"{r['usd_per_mtok_input']:.4f}",
                     f"{r['usd_per_mtok_output']:.4f}", _band(r)])
    title = f"{rows[0]['model']} at {rows[0]['context_tokens']:,} tokens" + (f", served by {engine}" if engine
                                                                               else "")
    text = dumps_table(["hardware", "fits", "max batch", "batch", "TTFT", "TPOT", "tok/s", "$/Mtok in",
                        "$/Mtok out", "error band"], body, title=title)
    if placed:
        text += ("\n\nx N (layout): one device does not hold it; the cheapest layout that does "
                 "(--single-device: one device only)")
    refused = [f"{r['hardware']}: {r['reason']}" for r in rows if r.get("reason")]
    return text + ("\n\nnot served: " + "; ".join(refused) if refused else "")
