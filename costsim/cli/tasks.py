"""Agent tasks and the report: `costsim scenario`, `report`."""

from __future__ import annotations

from typing import Annotated

import typer

from costsim.cli.common import (
    Dtype,
    EngineOpt,
    Format,
    FormatOpt,
    KvDtypeOpt,
    MaxDevicesOpt,
    OutputOpt,
    PriceOpt,
    SingleDeviceOpt,
    StateDtypeOpt,
    WeightDtypeOpt,
    _deployment,
    _emit,
    _engine,
    _render,
)
from costsim.errors import CostsimError


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


scenario_app = typer.Typer(help="Agent workloads: cost per task, turn by turn.", no_args_is_help=True)


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
    from costsim.api import run_scenario
    from costsim.output.formats import dumps_table
    from costsim.units import fmt_bytes

    rows, charted = run_scenario(scenario, model, hardware, samples=samples, seed=seed, api_prices=api_prices,
                                 price=price, weights=weight_dtype.value, kv_cache=kv_dtype.value,
                                 state=state_dtype.value, utilisation=utilisation, layout=layout,
                                 single_device=single_device, max_devices=max_devices, engine=engine)
    if plot:
        from costsim.output.plots import scenario_figure, write_html

        if not charted:
            raise CostsimError("--plot: no model fits on these devices, nothing to chart")
        write_html(scenario_figure(f"scenario {rows[0]['scenario']}: cost per turn and context", charted), plot)
    _render(fmt, output, rows, rows, lambda: dumps_table(
        ["model", "hardware", "$ / task", "p50", "p90", "wall s", "peak cache", "hit ratio", "$/Mtok blended"],
        [[r["model"], r["hardware"], f"{r['usd_per_task']:.4f}", f"{r['usd_p50']:.4f}", f"{r['usd_p90']:.4f}",
          "-" if r["wall_time_s"] is None else f"{r['wall_time_s']:,.1f}",
          "-" if r["peak_cache_bytes"] is None else fmt_bytes(r["peak_cache_bytes"]), f"{r['cache_hit_ratio']:.1%}",
          f"{r['usd_per_mtok_blended']:.3f}"] if r["fits_memory"] else
         [r["model"], r["hardware"], "does not fit", "-", "-", "-", fmt_bytes(r["peak_cache_bytes"]), "-", "-"]
         for r in rows],
        title=f"scenario {rows[0]['scenario']}: {rows[0]['turns']} turns, {samples:,} samples")
        + "".join(f"\n{r['model']} on {r['hardware']}: {r.get('placement') or r['reason']}" for r in rows
                  if r.get("placement") or r.get("reason")))
