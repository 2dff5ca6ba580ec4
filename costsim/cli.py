"""The `costsim` command line: parse, call the Python API, format. Nothing else lives here."""

from __future__ import annotations

import sys
from enum import StrEnum
from typing import Annotated, Any

import typer

from costsim.errors import CostsimError

app = typer.Typer(
    help="costsim: what long-context LLM inference costs, per attention family and accelerator.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

DEFAULT_MODEL = "llama-3.1-70b"


def _version(value: bool) -> None:
    if value:
        from costsim import __version__

        sys.stdout.write(f"costsim {__version__}\n")
        raise typer.Exit()


@app.callback()
def _root(version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                                help="print costsim's version and exit")] = False) -> None:
    """costsim: what long-context LLM inference costs, per attention family and accelerator."""


class Format(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"


class Dtype(StrEnum):
    fp32 = "fp32"
    bf16 = "bf16"
    fp16 = "fp16"
    fp8 = "fp8"
    int8 = "int8"
    fp4 = "fp4"
    int4 = "int4"


FormatOpt = Annotated[Format, typer.Option("--format", "-f", help="table, json or csv")]
WeightDtypeOpt = Annotated[Dtype, typer.Option(help="weight storage type")]
KvDtypeOpt = Annotated[Dtype, typer.Option(help="KV / latent cache type")]
StateDtypeOpt = Annotated[Dtype, typer.Option(help="recurrent state type")]
PriceOpt = Annotated[float | None, typer.Option(help="override the profile's USD per device-hour")]
OutputOpt = Annotated[str | None, typer.Option("--output", "-o", help="write to this file instead of stdout")]
ContextOpt = Annotated[str, typer.Option("--context", "-c", help="context tokens: 8192, 128k, 1M, 10M")]
LayoutOpt = Annotated[str | None, typer.Option(help="several devices per system: tp=8,pp=2 (tp, cp, pp, ep, dp)")]
PlanOpt = Annotated[str | None, typer.Option("--plan", help="auto: the cheapest layout per point up to "
                                                            "--max-devices (docs/deployments.md)")]
MaxDevicesOpt = Annotated[int, typer.Option(help="with --plan auto: the largest layout considered")]
SingleDeviceOpt = Annotated[bool, typer.Option("--single-device", help="one device only: where the model or the "
                                                                       "batch does not fit, say what it needs "
                                                                       "instead of answering on a layout")]


def _no_engine(name: str | None) -> str | None:
    """--engine none: costsim's own kernel list and 10% reserve (the model its harnesses check), no engine."""
    return None if name is None or name.strip().lower() == "none" else name


EngineOpt = Annotated[str | None, typer.Option("--engine", callback=_no_engine,
                                               help="serving engine: vllm (default), sglang, trtllm, pytorch-eager, "
                                                    "a profile .toml, or none (costsim's own kernel list)")]


def _engine(name: str | None):
    """The --engine profile (None: costsim's own kernel list and reserve)."""
    from costsim.inputs.engines import engine_or_none

    return engine_or_none(name)


def _layout_choice(layout: str | None, plan_mode: str | None, max_devices: int):
    """(Layout or None, plan_auto) from --layout / --plan, with one-line errors."""
    from costsim.api import check_max_devices
    from costsim.errors import CostsimError
    from costsim.spec.layout import parse_layout

    if plan_mode is not None and plan_mode.strip().lower() != "auto":
        raise CostsimError(f"--plan: only 'auto' is understood, got {plan_mode!r}; or give --layout tp=8,...")
    if layout is not None and plan_mode is not None:
        raise CostsimError("--layout and --plan auto exclude each other; give one")
    check_max_devices(max_devices)
    return (parse_layout(layout) if layout is not None else None), plan_mode is not None


def _precision(weights: Dtype, kv: Dtype, state: Dtype):
    return _deployment(weights, kv, state).precision


def _check_metric_and_price(metric: str, price: float | None) -> None:
    from costsim.analysis.sweeps import METRICS
    from costsim.api import check_price

    if metric not in METRICS:
        raise CostsimError(f"--metric: '{metric}' is not one of {', '.join(METRICS)}")
    check_price(price)


def _deployment(weights: Dtype, kv: Dtype, state: Dtype):
    from costsim.spec.deployment import Deployment

    return Deployment(weights=weights.value, kv_cache=kv.value, state=state.value)


def _warn(warnings: list[str]) -> None:
    """Warnings go to stderr (and stay in the JSON): the answer on stdout stays machine-readable."""
    for w in dict.fromkeys(warnings):
        sys.stderr.write(f"warning: {w}\n")


def _emit(text: str) -> None:
    sys.stdout.write(text if text.endswith("\n") else text + "\n")


def _render(fmt: Format, output: str | None, data: Any, csv_rows: list[dict[str, Any]], table) -> None:
    """The same three formats for every command; `table` is called only when a table is asked for."""
    from costsim.output.formats import dumps_csv, dumps_json

    if fmt is Format.json:
        _write(dumps_json(data), output)
    elif fmt is Format.csv:
        _write(dumps_csv(csv_rows), output)
    else:
        _write(table(), output)


@app.command()
def models(fmt: FormatOpt = Format.table, output: OutputOpt = None) -> None:
    """List the preset models (use the name with --model / inspect)."""
    from costsim.api import list_models
    from costsim.output.formats import dumps_table
    from costsim.units import fmt_count

    rows = list_models()
    _render(fmt, output, rows, rows, lambda: dumps_table(
        ["name", "layers", "mixers", "params total", "params active", "source file"],
        [[r["name"], r["num_layers"], r["layer_mix"], fmt_count(r["params_total"]),
          fmt_count(r["params_active"]), r["file"]] for r in rows]))


@app.command()
def inspect(
    model: Annotated[str, typer.Argument(help="preset name (see `costsim models`) or path to a config.json")]
    = DEFAULT_MODEL,
    context: ContextOpt = "131072",
    batch: Annotated[str, typer.Option(help="sequences per decode step (for decode bytes)")] = "1",
    weight_dtype: WeightDtypeOpt = Dtype.bf16,
    kv_dtype: KvDtypeOpt = Dtype.bf16,
    state_dtype: StateDtypeOpt = Dtype.fp32,
    fmt: FormatOpt = Format.table,
    output: OutputOpt = None,
) -> None:
    """Parameters, cache per token and per sequence, prefill and decode FLOPs and bytes of a model."""
    from costsim.api import inspect_model, load_model
    from costsim.units import parse_tokens

    n = parse_tokens(context, "--context")
    result = inspect_model(load_model(model), n, _precision(weight_dtype, kv_dtype, state_dtype),
                           parse_tokens(batch, "--batch"))
    _render(fmt, output, result, [result], lambda: _inspect_table(result))


DEFAULT_ESTIMATE_MODEL = "llama-3.1-8b"
DEFAULT_HARDWARE = "h100-sxm"


def _write(text: str, output: str | None) -> None:
    if output is None:
        _emit(text)
        return
    from costsim.output.atomic import write_atomic

    write_atomic(output, text if text.endswith("\n") else text + "\n")


@app.command()
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
                          max_devices=max_devices)
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


@app.command()
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
        text += "\n\n" + _plan_table(res["feasible"][:show], f"{len(res['feasible'])} feasible layouts, "
                                                               f"cheapest first (top {show})")
        reasons: dict[str, int] = {}
        for r in res["rejected"]:
            key = r["reason"].split(":")[0]
            reasons[key] = reasons.get(key, 0) + 1
        text += "\n\nrejected: " + "; ".join(f"{n} x {k}" for k, n in sorted(reasons.items(), key=lambda x: -x[1]))
        return text

    _render(fmt, output, res, rows, table)


@app.command()
def report(
    model: Annotated[str, typer.Option("--model", "-m", help="presets, comma-separated")]
    = "llama-3.1-8b,qwen3-next-80b-a3b,deepseek-v3",
    hardware: Annotated[str, typer.Option("--hardware", "-H", help="profiles, comma-separated")] = "h100-sxm,b200",
    scenario: Annotated[str | None, typer.Option(help="add this scenario's cost per task by kind")] = "coding-agent",
    out: Annotated[str, typer.Option("--out", help="HTML file to write (self-contained, works offline)")]
    = "report.html",
    context: Annotated[str, typer.Option("--context", "-c", help="range lo..hi")] = "1k..10M",
    points: Annotated[int, typer.Option(help="contexts in the range")] = 60,
    samples: Annotated[int, typer.Option(help="Monte Carlo samples for the scenario")] = 500,
    single: Annotated[bool, typer.Option("--single-device", help="one device per system instead of the "
                                                                 "cheapest layout per point")] = False,
    max_devices: MaxDevicesOpt = 72,
    price: PriceOpt = None,
    weight_dtype: WeightDtypeOpt = Dtype.bf16,
    kv_dtype: KvDtypeOpt = Dtype.bf16,
    state_dtype: StateDtypeOpt = Dtype.fp32,
    engine: EngineOpt = "vllm",
) -> None:
    """One self-contained HTML report: anatomy, cache vs context, serving metrics per device, scenario
    cost, the throughput-interactivity frontier, and the measured error band of the timing model."""
    from costsim.analysis.report import build_report, write_report
    from costsim.analysis.sweeps import parse_context_range, split_names
    from costsim.api import check_price
    from costsim.errors import CostsimError

    check_price(price)
    if not 1 <= samples <= 100_000:
        raise CostsimError(f"--samples: must be between 1 and 100,000, got {samples}")
    scen = None if scenario is None or scenario.strip().lower() in ("", "none") else scenario
    page, charts = build_report(split_names(model, "--model"), split_names(hardware, "--hardware"), scen,
                                parse_context_range(context, points), _deployment(weight_dtype, kv_dtype, state_dtype),
                                samples, price, not single, max_devices, _engine(engine))
    write_report(out, page)
    _emit(f"wrote {out} ({charts} charts, {len(page) / 1e6:.1f} MB)")


@app.command()
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
    from costsim.errors import CostsimError
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


@app.command()
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


@app.command()
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


SERVE_COLUMNS = ["load", "batch", "out tok/s", "tok/s/dev", "tok/s/user", "TTFT p50", "TTFT p99",
                 "TPOT p50", "ITL p99", "$/Mtok out", "$/Mtok in", "note"]


def _serve_load(r: dict[str, Any]) -> str:
    if r.get("offline"):
        return f"offline {r['requests']:,}"
    if r.get("request_rate") is not None:
        return f"{r['request_rate']:g} req/s"
    return f"{r['concurrency']:,} users"


def _ms(value: dict[str, float] | None, stat: str) -> str:
    """A latency statistic in the unit that reads best (queueing past saturation reaches minutes)."""
    from costsim.units import fmt_duration

    return "-" if value is None else fmt_duration(value[stat])


def _serve_table(rows: list[dict[str, Any]]) -> str:
    from costsim.output.formats import dumps_table

    def num(r: dict[str, Any], key: str, fmt: str) -> str:
        return "-" if r.get(key) is None else format(r[key], fmt)

    first = rows[0]
    body = [[_serve_load(r), f"{r['batch']:,.0f}", num(r, "output_tokens_per_s", ",.0f"),
             num(r, "output_tokens_per_s_per_device", ",.0f"), num(r, "tokens_per_s_per_user", ",.1f"),
             _ms(r.get("ttft_s"), "p50"), _ms(r.get("ttft_s"), "p99"), _ms(r.get("tpot_s"), "p50"),
             _ms(r.get("itl_s"), "p99"), num(r, "usd_per_mtok_output", ",.3f"), num(r, "usd_per_mtok_input", ",.3f"),
             r.get("reason", "")] for r in rows]
    title = (f"{first['model']} on {first['hardware']} x {first['devices']} ({_layout_label(first['layout'])}), "
             f"{first['engine']} {first['engine_version']}, {first['isl']:,} in / {first['osl']:,} out"
             + (f", speculative {first['speculative']}" if first.get("speculative") else ""))
    text = dumps_table(SERVE_COLUMNS, body, title=title)
    if first["fits_memory"]:
        pool = first["evidence"]["kv_pool"]
        text += (f"\n\nKV pool per device {pool['kv_pool_bytes'] / 2**30:,.2f} GiB of "
                 f"{pool['capacity_bytes'] / 2**30:,.2f} GiB ({first['capacity_sequences']:,.0f} requests at once)")
    stand_ins = [f"{a['phase']} {a['kernel']} priced by {a['table'] or 'defaults'} ({a['status']})"
                 for a in first["evidence"]["attention"] if a["status"] != "fitted"]
    if stand_ins:
        text += "\nattention: " + "; ".join(stand_ins)
    return text


def _layout_label(layout: dict[str, int]) -> str:
    return ",".join(f"{k}={v}" for k, v in layout.items() if v != 1) or "single"


@app.command()
def serve(
    model: Annotated[str, typer.Option("--model", "-m", help="preset or config.json")] = "llama-3.1-8b",
    hardware: Annotated[str, typer.Option("--hardware", "-H", help="profile name or .toml path")] = DEFAULT_HARDWARE,
    engine: EngineOpt = "vllm",
    layout: LayoutOpt = None,
    isl: Annotated[str, typer.Option("--isl", help="prompt tokens per request")] = "1k",
    osl: Annotated[str, typer.Option("--osl", help="output tokens per request")] = "1k",
    concurrency: Annotated[str | None, typer.Option(help="concurrent users (closed loop), e.g. 1,8,64")] = None,
    request_rate: Annotated[str | None, typer.Option(help="Poisson arrivals, requests/s, e.g. 1,5,10")] = None,
    offline: Annotated[bool, typer.Option("--offline", help="all --requests queued at once")] = False,
    requests: Annotated[str, typer.Option(help="with --offline: how many requests")] = "1000",
    speculative: Annotated[str | None, typer.Option(help="speculative method of the engine profile: eagle3, mtp")]
    = None,
    price: PriceOpt = None,
    weight_dtype: WeightDtypeOpt = Dtype.bf16,
    kv_dtype: KvDtypeOpt = Dtype.bf16,
    state_dtype: StateDtypeOpt = Dtype.fp32,
    fmt: FormatOpt = Format.table,
    output: OutputOpt = None,
) -> None:
    """What a serving engine delivers under a request workload: throughput per device and per user,
    TTFT, TPOT and ITL (p50 / p99), $/Mtok, from the engine's step loop (docs/serving.md)."""
    from costsim.api import serve as run_serve

    if concurrency is None and request_rate is None and not offline:
        concurrency = "1,8,32,64,128,256"
    rows = run_serve(model, hardware, engine=engine, layout=layout, isl=isl, osl=osl,
                     concurrency=concurrency, request_rate=request_rate, offline=offline, requests=requests,
                     speculative=speculative, price=price, weights=weight_dtype.value, kv_cache=kv_dtype.value,
                     state=state_dtype.value)
    flat = [{k: v for k, v in r.items() if k not in ("evidence", "layout", *TIMED)} | _flat_times(r) for r in rows]
    _render(fmt, output, rows if len(rows) > 1 else rows[0], flat, lambda: _serve_table(rows))


TIMED = ("ttft_s", "tpot_s", "itl_s")


def _flat_times(r: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"layout": _layout_label(r["layout"])}
    for key in TIMED:
        for stat in ("mean", "p50", "p99"):
            out[f"{key.removesuffix('_s')}_{stat}_s"] = None if r.get(key) is None else r[key][stat]
    return out


@app.command()
def frontier(
    model: Annotated[str, typer.Option("--model", "-m", help="preset or config.json")] = "llama-3.1-70b",
    hardware: Annotated[str, typer.Option("--hardware", "-H", help="profiles, comma-separated, or all")]
    = "h100-sxm,h200,b200",
    engine: EngineOpt = "vllm",
    isl: Annotated[str, typer.Option("--isl", help="prompt tokens per request")] = "1k",
    osl: Annotated[str, typer.Option("--osl", help="output tokens per request")] = "1k",
    max_devices: Annotated[int, typer.Option(help="largest layout (tp x pp) considered")] = 8,
    speculative: Annotated[str | None, typer.Option(help="speculative method of the engine profile")] = None,
    weight_dtype: WeightDtypeOpt = Dtype.bf16,
    kv_dtype: KvDtypeOpt = Dtype.bf16,
    state_dtype: StateDtypeOpt = Dtype.fp32,
    plot: Annotated[str | None, typer.Option(help="write the frontier chart (HTML) here")] = None,
    fmt: FormatOpt = Format.table,
    output: OutputOpt = None,
) -> None:
    """The throughput-interactivity frontier per hardware: output tokens/s per device against tokens/s
    per user, over layouts and concurrency levels, with $/Mtok (the InferenceX view)."""
    from costsim.api import frontier as run_frontier
    from costsim.output.formats import dumps_table

    res = run_frontier(model, hardware, engine=engine, isl=isl, osl=osl,
                       max_devices=max_devices, speculative=speculative, weights=weight_dtype.value,
                       kv_cache=kv_dtype.value, state=state_dtype.value)
    if plot:
        from costsim.output.plots import frontier_figure, write_html

        write_html(frontier_figure(res), plot)
    rows = [{"hardware": h["hardware"], **p} for h in res["hardware"] for p in h.get("frontier", [])]

    def table() -> str:
        parts = []
        for h in res["hardware"]:
            title = f"{res['model']} on {h['hardware']}, {res['engine']}, {res['isl']:,} in / {res['osl']:,} out"
            if not h.get("frontier"):
                parts.append(f"{title}: {h.get('reason', 'no point')}")
                continue
            body = [[p["layout"], p["devices"], f"{p['concurrency']:,.0f}", f"{p['tokens_per_s_per_user']:,.1f}",
                     f"{p['output_tokens_per_s_per_device']:,.0f}", f"{p['usd_per_mtok_output']:,.3f}",
                     f"{p['ttft_p50_s'] * 1e3:,.0f}", f"{p['tpot_p50_s'] * 1e3:,.1f}"] for p in h["frontier"]]
            parts.append(dumps_table(["layout", "devices", "users", "tok/s/user", "tok/s/device", "$/Mtok out",
                                      "TTFT ms", "TPOT ms"], body,
                                     title=f"{title}: {len(h['frontier'])} frontier points of {h['points']}"))
        return "\n\n".join(parts)

    _render(fmt, output, res, rows, table)


@app.command()
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
            body.append([name, "no", f"{int(r['max_batch']):,}", "-", "-", "-", "-", "-", "-"])
            continue
        body.append([name, "yes", f"{int(r['max_batch']):,}", f"{int(r['batch']):,}", fmt_duration(r["ttft_s"]),
                     fmt_duration(r["tpot_s"]), f"{r['decode_tokens_per_s']:,.0f}", f"{r['usd_per_mtok_input']:.4f}",
                     f"{r['usd_per_mtok_output']:.4f}"])
    title = f"{rows[0]['model']} at {rows[0]['context_tokens']:,} tokens" + (f", served by {engine}" if engine
                                                                               else "")
    text = dumps_table(["hardware", "fits", "max batch", "batch", "TTFT", "TPOT", "tok/s", "$/Mtok in",
                        "$/Mtok out"], body, title=title)
    if placed:
        text += ("\n\nx N (layout): one device does not hold it; the cheapest layout that does "
                 "(--single-device: one device only)")
    refused = [f"{r['hardware']}: {r['reason']}" for r in rows if r.get("reason")]
    return text + ("\n\nnot served: " + "; ".join(refused) if refused else "")


@app.command()
def validate(
    files: Annotated[list[str], typer.Argument(help="measurement .jsonl files written by the microbenchmark")],
    hardware: Annotated[str | None, typer.Option("--hardware", "-H", help="profile for all records "
                                                 "(default: each record's own)")] = None,
    plot: Annotated[str | None, typer.Option(help="write predicted-vs-measured chart (HTML) here")] = None,
    fmt: FormatOpt = Format.table,
    output: OutputOpt = None,
) -> None:
    """Predict every measured kernel with the timing model; error per record, per op, family, source."""
    from costsim.evidence.validate import validate as run_validate
    from costsim.inputs.measurements import read_measurements
    from costsim.output.formats import dumps_csv, dumps_json, dumps_table

    serve_files = [p for p in files if _is_serve_file(p)]
    if serve_files:
        if len(serve_files) != len(files):
            from costsim.errors import CostsimError

            raise CostsimError("validate: give published serve records (kind = serve) and kernel records in "
                               "separate calls")
        _validate_published(serve_files, fmt, output)
        return
    records = [r for path in files for r in read_measurements(path)]
    result = run_validate(records, hardware)
    if plot:
        from costsim.output.plots import validation_figure, write_html

        write_html(validation_figure(result["records"]), plot)
    if fmt is Format.json:
        _write(dumps_json(result), output)
    elif fmt is Format.csv:
        _write(dumps_csv(result["records"]), output)
    else:
        rows = []
        for group in ("by_implementation", "by_source", "by_hardware"):
            for label, st in result["summary"][group].items():
                rows.append([group[3:], label, st["count"], f"{st['median_abs']:.1%}", f"{st['p90_abs']:.1%}",
                             f"{st['max_abs']:.1%}", f"{st['median_signed']:+.1%}"])
        _write(dumps_table(["by", "group", "records", "median |err|", "p90 |err|", "max |err|", "median err"], rows,
                           title="predicted vs measured kernel time (err = predicted/measured - 1)"), output)


def _is_serve_file(path: str) -> bool:
    import json
    from pathlib import Path

    try:
        with Path(path).open(encoding="utf-8") as fh:
            first = next((line for line in fh if line.strip()), "")
        return json.loads(first).get("kind") == "serve"
    except (OSError, ValueError, AttributeError):
        return False


def _validate_published(files: list[str], fmt: Format, output: str | None) -> None:
    """Published serving measurements predicted by costsim serve, fit and held-out sets apart."""
    from costsim.evidence.published import check, read_published
    from costsim.output.formats import dumps_csv, dumps_json, dumps_table

    result = check([r for path in files for r in read_published(path)])
    if fmt is Format.json:
        _write(dumps_json(result), output)
        return
    if fmt is Format.csv:
        _write(dumps_csv([{k: v for k, v in r.items() if k not in ("layout", "quote")} for r in result["records"]]),
               output)
        return
    rows = [[k, v["count"], f"{v['median_signed']:+.1%}", f"{v['median_abs']:.1%}", f"{v['p90_abs']:.1%}",
             f"{v['max_abs']:.1%}"] for k, v in result["summary"].items() if isinstance(v, dict)]
    text = dumps_table(["set/metric[:group]", "records", "median err", "median |err|", "p90 |err|", "max |err|"],
                       rows, title="costsim serve vs published measurements (err = predicted/measured - 1)")
    text += (f"\n\n{result['summary']['cases']} cases; {result['summary']['not_predicted']} records not predicted "
             "(see --format json: not_predicted says why)")
    _write(text, output)


@app.command()
def calibrate(
    files: Annotated[list[str], typer.Argument(help="measurement .jsonl files of one GPU")],
    hardware: Annotated[str, typer.Option("--hardware", "-H", help="profile to fit")] = DEFAULT_HARDWARE,
    attention_source: Annotated[str, typer.Option(help="prefill attention the engine assumes")] = "torch-sdpa-cudnn",
    scan_source: Annotated[str, typer.Option(help="chunked-scan implementation the engine assumes")] = "fla",
    write: Annotated[bool, typer.Option("--write", help="store the fitted values in the profile file")] = False,
    predict: Annotated[list[str] | None, typer.Option(help="measurements of another GPU: apply the fit to its "
                                                      "profile and report the error there")] = None,
    fmt: FormatOpt = Format.table,
    output: OutputOpt = None,
) -> None:
    """Fit the profile's efficiency parameters to measurements; report fitted and held-out error."""
    from pathlib import Path

    from costsim.evidence.calibrate import calibrate as run_calibrate
    from costsim.evidence.calibrate import write_profile
    from costsim.inputs.data import data_dir
    from costsim.inputs.hardware import load_hardware
    from costsim.inputs.measurements import read_measurements
    from costsim.output.formats import dumps_json, dumps_table

    hw = load_hardware(hardware)
    records = [r for path in files for r in read_measurements(path)
               if r.get("record") == "header" or r.get("hardware") == hw.name]
    result = run_calibrate(records, hw, attention_source, scan_source)
    if write:
        is_file = Path(hardware).suffix == ".toml"
        target = Path(hardware) if is_file else data_dir("hardware_profiles") / f"{hw.name}.toml"
        write_profile(target, result["efficiency"], [Path(f).name for f in files], result["implementations"])
    shown = {k: v for k, v in result.items() if k != "profile"}
    if predict:
        from costsim.evidence.calibrate import transfer

        shown["transfer"] = transfer(result["efficiency"], result["implementations"],
                                     [r for p in predict for r in read_measurements(p)])
    if fmt is Format.table:
        rows = []
        for g in result["groups"]:
            if "skipped" in g:
                rows.append([g["group"], "skipped: " + g["skipped"], "", "", ""])
                continue
            params = ", ".join(f"{k}={v:.4g}" for k, v in g["params"].items())
            rows.append([g["group"], params, f"{g['fit']['median_abs']:.1%}",
                         f"{g['held_out_before']['median_abs']:.1%}", f"{g['held_out']['median_abs']:.1%}"])
        text = dumps_table(["group", "fitted", "fit median |err|", "held-out before", "held-out after"], rows,
                           title=f"calibration of {hw.name}" + (" (written)" if write else ""))
        held = [[by, k, st["count"], f"{st['median_abs']:.1%}", f"{st['p90_abs']:.1%}", f"{st['max_abs']:.1%}"]
                for by in ("op", "source") for k, st in result[f"held_out_by_{by}"].items() if st["count"]]
        text += "\n\n" + dumps_table(["by", "group", "records", "median |err|", "p90 |err|", "max |err|"], held,
                                     title="held-out records (every other shape within each regime), under the "
                                           "fitted profile")
        if result["kept_earlier"]:
            text += ("\n\nkept from the profile, not refit by these records (a key costsim no longer produces is "
                     "never read; delete its table by hand): " + ", ".join(result["kept_earlier"]))
        if predict:
            moved = [[op, st["count"], f"{st['median_abs']:.1%}", f"{st['p90_abs']:.1%}"]
                     for op, st in shown["transfer"].items()]
            text += "\n\n" + dumps_table(["op", "records", "median |err|", "p90 |err|"], moved,
                                           title=f"fit of {hw.name} applied to {', '.join(predict)}")
        _write(text, output)
    else:
        _write(dumps_json(shown), output)


@app.command("hardware")
def hardware_list(fmt: FormatOpt = Format.table, output: OutputOpt = None) -> None:
    """List the hardware profiles (use the name with --hardware)."""
    from costsim.api import list_hardware
    from costsim.output.formats import dumps_table

    rows = list_hardware()
    _render(fmt, output, rows, rows, lambda: dumps_table(
        ["name", "device", "bf16 TFLOP/s", "fp8 TFLOP/s", "memory GB", "TB/s", "USD/h"],
        [[r["name"], r["display_name"], r["bf16_dense_tflops"], r["fp8_dense_tflops"] or "-", r["memory_gb"],
          r["hbm_bandwidth_tb_s"], f"{r['usd_per_hour']:.2f}"] for r in rows]))


scenario_app = typer.Typer(help="Agent workloads: cost per task, turn by turn.", no_args_is_help=True)
app.add_typer(scenario_app, name="scenario")


@scenario_app.command("list")
def scenario_list(fmt: FormatOpt = Format.table, output: OutputOpt = None) -> None:
    """The shipped scenarios."""
    from costsim.inputs.scenarios import load_scenario, scenario_names
    from costsim.output.formats import dumps_table

    rows = []
    for name in scenario_names():
        sc = load_scenario(name)
        rows.append({"name": name, "turns": len(sc.all_turns()), "description": sc.description})
    _render(fmt, output, rows, rows, lambda: dumps_table(["name", "turns", "description"],
                                                        [[r["name"], r["turns"], r["description"]] for r in rows]))


@scenario_app.command("run")
def scenario_run(
    scenario: Annotated[str, typer.Argument(help="shipped scenario name (scenario list) or a .toml path")],
    model: Annotated[str, typer.Option("--model", "-m", help="preset names, comma-separated")] = "llama-3.1-8b",
    hardware: Annotated[str, typer.Option("--hardware", "-H", help="profiles, comma-separated")] = "h100-sxm",
    samples: Annotated[int, typer.Option(help="Monte Carlo samples of the token counts")] = 1000,
    seed: Annotated[int, typer.Option(help="random seed (results are reproducible)")] = 0,
    api_prices: Annotated[str | None, typer.Option(help="provider price sheets to compare (names or .toml "
                                                   "paths, comma-separated)")] = None,
    price: PriceOpt = None,
    weight_dtype: WeightDtypeOpt = Dtype.bf16,
    kv_dtype: KvDtypeOpt = Dtype.bf16,
    state_dtype: StateDtypeOpt = Dtype.fp32,
    utilisation: Annotated[float, typer.Option(help="share of paid device time doing useful work (0-1]")] = 1.0,
    plot: Annotated[str | None, typer.Option(help="write cost per turn and context (HTML) here")] = None,
    layout: Annotated[str | None, typer.Option(help="run on a multi-device replica: tp=8,pp=2 (peak cache is "
                                                   "then per device)")] = None,
    single_device: SingleDeviceOpt = False,
    max_devices: Annotated[int, typer.Option(help="where one device does not hold the task: the largest layout "
                                                  "considered")] = 72,
    engine: EngineOpt = "vllm",
    fmt: FormatOpt = Format.table,
    output: OutputOpt = None,
) -> None:
    """Dollars, time and cache memory per task for every model x hardware pair; where one device does not
    hold the task, on the cheapest layout that does (--single-device: say so instead)."""
    from costsim.analysis.sweeps import split_names
    from costsim.analysis.task_costs import run_task, summarize, summarize_api
    from costsim.analysis.task_placement import run_answered
    from costsim.api import check_price
    from costsim.inputs.hardware import load_hardware
    from costsim.inputs.models import load_model
    from costsim.inputs.scenarios import load_api_price, load_scenario
    from costsim.output.formats import dumps_table
    from costsim.units import fmt_bytes

    check_price(price)
    if not 1 <= samples <= 1_000_000:
        raise CostsimError(f"--samples: must be between 1 and 1,000,000, got {samples}")
    if not 0 < utilisation <= 1:
        raise CostsimError(f"--utilisation: must be in (0, 1], got {utilisation}")
    if not 0 <= seed < 2**63:
        raise CostsimError(f"--seed: must be a whole number from 0 to 2^63 - 1, got {seed}")
    sc = load_scenario(scenario)
    dep = _deployment(weight_dtype, kv_dtype, state_dtype).model_copy(update={"utilisation": utilisation})
    chosen_layout = None if layout is None else _layout_choice(layout, None, 72)[0]
    eng = _engine(engine)
    rows = []
    charted = []
    for m in split_names(model, "--model"):
        spec = load_model(m)
        for h in split_names(hardware, "--hardware"):
            hw = load_hardware(h, usd_per_hour=price)
            if eng is not None:
                from costsim.serving.engines import check_serves

                check_serves(eng, spec, hw)
            if chosen_layout is None:
                used, task = run_answered(sc, spec, hw, dep, samples, seed, eng, max_devices, single_device)
            else:
                used, task = chosen_layout, run_task(sc, spec, hw, dep, samples, seed, layout=chosen_layout,
                                                     engine=eng)
            summary = summarize(task)
            if chosen_layout is None:
                if used is not None:
                    summary["placement"] = (f"cheapest layout that holds the task (one {hw.name} does not; "
                                            "--single-device keeps one)")
                elif not summary["fits_memory"]:
                    summary["reason"] = (f"one {hw.name} does not hold the task's peak cache" +
                                         ("" if single_device else f", nor any layout up to {max_devices} devices")
                                         + f"; try `costsim scenario run {scenario} -m {m} -H {h}`"
                                         + (" without --single-device" if single_device else " --weight-dtype fp8"))
            where = hw.name if used is None else f"{hw.name} x {used.devices} ({used.label()})"
            rows.append({"scenario": sc.name, "model": spec.name, "hardware": where,
                         "devices": 1 if used is None else used.devices,
                         "layout": "single" if used is None else used.label(), **summary})
            if rows[-1]["fits_memory"]:
                charted.append((f"{spec.name} on {where}", task))
    for sheet in split_names(api_prices, "--api-prices") if api_prices else []:
        api = load_api_price(sheet)
        # token counts do not depend on the model here: the provider's own tokenizer is not modelled
        task = run_task(sc, load_model(split_names(model, "--model")[0]), load_hardware(split_names(hardware,
                        "--hardware")[0]), dep, samples, seed, api, engine=None)
        rows.append({"scenario": sc.name, "model": api.model, "hardware": f"api:{api.name}", **summarize_api(task)})
    if plot:
        from costsim.output.plots import scenario_figure, write_html

        if not charted:
            raise CostsimError("--plot: no model fits on these devices, nothing to chart")
        write_html(scenario_figure(f"scenario {sc.name}: cost per turn and context", charted), plot)
    _render(fmt, output, rows, rows, lambda: dumps_table(
        ["model", "hardware", "$ / task", "p50", "p90", "wall s", "peak cache", "hit ratio", "$/Mtok blended"],
        [[r["model"], r["hardware"], f"{r['usd_per_task']:.4f}", f"{r['usd_p50']:.4f}", f"{r['usd_p90']:.4f}",
          "-" if r["wall_time_s"] is None else f"{r['wall_time_s']:,.1f}",
          "-" if r["peak_cache_bytes"] is None else fmt_bytes(r["peak_cache_bytes"]), f"{r['cache_hit_ratio']:.1%}",
          f"{r['usd_per_mtok_blended']:.3f}"] if r["fits_memory"] else
         [r["model"], r["hardware"], "does not fit", "-", "-", "-", fmt_bytes(r["peak_cache_bytes"]), "-", "-"]
         for r in rows],
        title=f"scenario {sc.name}: {rows[0]['turns']} turns, {samples:,} samples")
        + "".join(f"\n{r['model']} on {r['hardware']}: {r.get('placement') or r['reason']}" for r in rows
                  if r.get("placement") or r.get("reason")))


bench_app = typer.Typer(help="The bundled CUDA microbenchmark.", no_args_is_help=True)
app.add_typer(bench_app, name="bench")


@bench_app.command("run")
def bench_run(
    out: Annotated[str, typer.Option(help="JSON Lines file to write")] = "measurements/local.jsonl",
    quick: Annotated[bool, typer.Option(help="a few points per op, seconds instead of a minute")] = False,
    no_torch: Annotated[bool, typer.Option("--no-torch", help="skip the PyTorch / fla kernels")] = False,
    torch_deadline: Annotated[float | None, typer.Option(
        min=1, help="seconds the PyTorch / fla part may take (default 480; 90 with --quick)")] = None,
) -> None:
    """Build and run the microbenchmark (needs nvcc and an NVIDIA GPU); write measurement records."""
    from pathlib import Path

    from costsim.evidence.bench import run_bench

    for path in run_bench(Path(out), quick=quick, torch_kernels=not no_torch, torch_deadline_s=torch_deadline):
        _emit(f"wrote {path}")


@bench_app.command("model-step")
def bench_model_step(
    out: Annotated[str, typer.Option(help="JSON Lines file to write")] = "measurements/local-model-step.jsonl",
    quick: Annotated[bool, typer.Option(help="one decode and one prefill point per model")] = False,
    deadline: Annotated[float | None, typer.Option(min=1, help="seconds for all five models (default 600)")] = None,
) -> None:
    """Time whole decode steps and prefills of synthetic models (real shapes, random weights) with CUDA
    graphs; compare with `costsim validate FILE`. Needs PyTorch with CUDA (and fla for the hybrid)."""
    from pathlib import Path

    from costsim.evidence.bench import run_model_steps

    _emit(f"wrote {run_model_steps(Path(out), quick=quick, deadline_s=deadline)}")


def _inspect_table(r: dict[str, Any]) -> str:
    from costsim.output.formats import dumps_table
    from costsim.units import fmt_bytes, fmt_count, fmt_si

    rows: list[list[Any]] = [
        ["layers", f"{r['num_layers']}  ({r['layer_mix']})"],
        ["pattern", r["layer_pattern"]],
        ["params total", fmt_count(r["params_total"])],
        ["params active / token", fmt_count(r["params_active"])],
        ["params embedding + head", fmt_count(r["params_embedding"])],
        ["weights", fmt_bytes(r["weight_bytes"])],
        ["cache per token (growing)", f"{r['cache_bytes_per_token']:,.0f} B"],
        ["cache fixed (windows, state)", fmt_bytes(r["cache_bytes_fixed"])],
        [f"cache per sequence @ {r['context_tokens']:,}", fmt_bytes(r["cache_bytes_per_sequence"])],
    ]
    rows += [[f"  {kind}", fmt_bytes(v)] for kind, v in r["cache_bytes_by_kind"].items()]
    rows += [
        [f"prefill {r['context_tokens']:,} tokens", fmt_si(r["prefill_flops"], "FLOP")],
        [f"decode / token @ {r['context_tokens']:,}", fmt_si(r["decode_flops_per_token"], "FLOP")],
        [f"decode bytes / step (batch {r['batch']})", fmt_bytes(r["decode_bytes_per_step"])],
    ]
    rows += [[f"  {k}", fmt_bytes(v)] for k, v in r["decode_bytes_by_type"].items() if v]
    rows.append(["decode intensity", f"{r['decode_arithmetic_intensity']:.2f} FLOP/B"])
    p = r["precision"]
    title = f"{r['model']}  (weights {p['weights']}, kv {p['kv_cache']}, state {p['state']})"
    return dumps_table(["quantity", "value"], rows, title=title)


def main(argv: list[str] | None = None) -> int:
    """Entry point: every user error becomes one line on stderr and exit code 2."""
    try:  # typer >= 0.20 vendors click; older typer uses the click package
        from typer._click import exceptions as click_exc
    except ImportError:  # pragma: no cover
        from click import exceptions as click_exc

    args = list(sys.argv[1:] if argv is None else argv) or ["--help"]
    try:
        app(args=args, prog_name="costsim", standalone_mode=False)
    except CostsimError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 2
    except click_exc.UsageError as exc:
        sys.stderr.write("error: " + " ".join(exc.format_message().split()) + "\n")
        return 2
    except click_exc.ClickException as exc:
        sys.stderr.write("error: " + " ".join(exc.format_message().split()) + "\n")
        return 2
    except typer.Abort:
        sys.stderr.write("error: aborted\n")
        return 2
    except typer.Exit as exc:
        return int(getattr(exc, "exit_code", 0) or 0)
    except BrokenPipeError:
        return 0
    except Exception as exc:  # a bug, not bad input: still one line (COSTSIM_DEBUG=1 shows the traceback)
        import os

        if os.environ.get("COSTSIM_DEBUG"):
            raise
        sys.stderr.write(f"error: internal error ({type(exc).__name__}: {exc}); please report it with the command\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
