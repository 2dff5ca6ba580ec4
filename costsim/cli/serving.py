"""A serving engine under load: `costsim serve`, `frontier`."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from costsim.cli.common import (
    DEFAULT_HARDWARE,
    Dtype,
    EngineOpt,
    ExpertDtypeOpt,
    Format,
    FormatOpt,
    KvDtypeOpt,
    LayoutOpt,
    OutputOpt,
    PriceOpt,
    StateDtypeOpt,
    WeightDtypeOpt,
    _render,
)

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
    if first.get("calibration"):
        text += f"\n\nerror band of times and $ on {first['hardware']}: {first['calibration']['label']}"
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
    expert_dtype: ExpertDtypeOpt = None,
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
                     state=state_dtype.value, experts=expert_dtype.value if expert_dtype else None)
    flat = [{k: v for k, v in r.items() if k not in ("evidence", "layout", *TIMED)} | _flat_times(r) for r in rows]
    _render(fmt, output, rows if len(rows) > 1 else rows[0], flat, lambda: _serve_table(rows))


TIMED = ("ttft_s", "tpot_s", "itl_s")


def _flat_times(r: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"layout": _layout_label(r["layout"])}
    for key in TIMED:
        for stat in ("mean", "p50", "p99"):
            out[f"{key.removesuffix('_s')}_{stat}_s"] = None if r.get(key) is None else r[key][stat]
    return out


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
    expert_dtype: ExpertDtypeOpt = None,
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
                       kv_cache=kv_dtype.value, state=state_dtype.value,
                       experts=expert_dtype.value if expert_dtype else None)
    if plot:
        from costsim.output.plots import frontier_figure, write_html

        write_html(frontier_figure(res), plot)
    rows = [{"hardware": h["hardware"], **p} for h in res["hardware"] for p in h.get("frontier", [])]

    def table() -> str:
        parts = []
        for h in res["hardware"]:
            title = f"{res['model']} on {h['hardware']}, {res['engine']}, {res['isl']:,} in / {res['osl']:,} out"
            if h.get("calibration"):
                title += f" [{h['calibration']['label']}]"
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
