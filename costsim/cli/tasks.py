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
    _layout_choice,
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
