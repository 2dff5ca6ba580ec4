"""`costsim report`: one self-contained HTML page (plotly inlined, works offline) per comparison.

Sections: model anatomy (layer pattern, parameters by part), cache per sequence vs context, serving
metrics vs context per device (one chart, a button per metric), the scenario's cost breakdown, and the
timing model's measured error band for each device (from the committed measurements, or the
H100 -> H200 transfer error where the device was never measured).
"""

from __future__ import annotations

import datetime as dt
import html
from pathlib import Path
from typing import Any

import numpy as np

from costsim.errors import CostsimError
from costsim.spec.deployment import Deployment
from costsim.spec.model import PATTERN_LETTERS

PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2", "#7f7f7f",
           "#bcbd22"]
FAMILY_COLOURS = {"dense": "#1f77b4", "sliding": "#aec7e8", "chunked": "#9edae5", "mla": "#d62728", "dsa": "#ff9896",
                  "nsa": "#e377c2", "linear": "#2ca02c", "gated_delta": "#98df8a", "mamba2": "#ff7f0e",
                  "mamba": "#ffbb78", "ffn_only": "#c7c7c7"}
# parameter parts get their own colours, none shared with a layer kind: the two legends never read alike
PART_COLOURS = ["#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173", "#5254a3", "#8ca252", "#bd9e39", "#ad494a",
                "#a55194"]
SERVING_METRICS = [("usd_per_mtok_output", "$ / M output tokens"), ("usd_per_mtok_input", "$ / M input tokens"),
                   ("tpot_s", "time per output token (s)"), ("ttft_s", "time to first token (s)"),
                   ("max_batch", "sequences that fit"), ("decode_tokens_per_s", "decode tokens/s")]
LAYOUT = {"template": "plotly_white", "margin": {"l": 80, "r": 30, "t": 60, "b": 60}, "height": 460,
          "legend": {"orientation": "h", "y": -0.22}, "font": {"size": 13}}


def _anatomy(specs: list) -> Any:
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    from costsim.families.model_costs import param_counts

    fig = make_subplots(rows=1, cols=2, column_widths=[0.62, 0.38], horizontal_spacing=0.12,
                        subplot_titles=("layer pattern (one cell per layer)", "parameters by part (billions)"))
    families = sorted({(lay.mixer.family if lay.mixer else "ffn_only") for s in specs for lay in s.layers})
    for family in families:
        xs, ys = [], []
        for s in specs:
            for i, lay in enumerate(s.layers):
                if (lay.mixer.family if lay.mixer else "ffn_only") == family:
                    xs.append(i)
                    ys.append(s.name)
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="markers", name=family, legendgroup=family, legend="legend",
                                 marker={"symbol": "square", "size": 9, "color": FAMILY_COLOURS.get(family, "#333")},
                                 hovertemplate="%{y}: layer %{x} = " + family + "<extra></extra>"), row=1, col=1)
    parts = sorted({p for s in specs for p in param_counts(s).by_part})
    for j, part in enumerate(parts):
        values = [param_counts(s).by_part.get(part, 0) / 1e9 for s in specs]
        fig.add_trace(go.Bar(y=[s.name for s in specs], x=values, orientation="h", name=part, legend="legend2",
                             marker={"color": PART_COLOURS[j % len(PART_COLOURS)]},
                             hovertemplate="%{y}: %{x:.2f} B " + part + "<extra></extra>"), row=1, col=2)
    fig.update_layout(barmode="stack", **{**LAYOUT, "height": 260 + 55 * len(specs),
                                          "legend": {"orientation": "h", "y": -0.35, "x": 0.0,
                                                     "title": {"text": "layer kind "}},
                                          "legend2": {"orientation": "h", "y": -0.6, "x": 0.0,
                                                      "title": {"text": "parameters "}}})
    fig.update_xaxes(title_text="layer", row=1, col=1)
    fig.update_xaxes(title_text="billion parameters", row=1, col=2)
    return fig


def _cache(specs: list, contexts: np.ndarray, dep: Deployment) -> Any:
    import plotly.graph_objects as go

    from costsim.families.model_costs import cache_bytes

    fig = go.Figure()
    for i, s in enumerate(specs):
        fig.add_trace(go.Scatter(x=contexts, y=cache_bytes(s, contexts, dep.precision) / 2**30, mode="lines",
                                 name=s.name, line={"color": PALETTE[i % len(PALETTE)], "width": 2.5},
                                 hovertemplate="%{x:,.0f} tokens: %{y:.3g} GiB<extra>" + s.name + "</extra>"))
    fig.update_layout(title={"text": "cache per sequence vs context (KV, latents, windows, recurrent state)",
                             "x": 0.01},
                      xaxis={"type": "log", "title": "context length (tokens)"},
                      yaxis={"type": "log", "title": "GiB per sequence"}, **LAYOUT)
    return fig


def _serving(result) -> Any:
    """One chart, a button per metric; colour per model, dash per device."""
    import plotly.graph_objects as go

    metrics = SERVING_METRICS + ([("devices", "devices per system")] if "devices" in result.series[0] else [])

    dashes = ["solid", "dash", "dot", "dashdot", "longdash", "longdashdot"]
    hardware = sorted({s["hardware"] for s in result.series})
    models = [s["model"] for s in result.series]
    model_order = list(dict.fromkeys(models))
    fig = go.Figure()
    for k, (metric, _label) in enumerate(metrics):
        for s in result.series:
            fits = np.asarray(s["fits_memory"], dtype=bool)
            y = np.where(fits, np.asarray(s[metric], dtype=float), np.nan)
            colour = PALETTE[model_order.index(s["model"]) % len(PALETTE)]
            fig.add_trace(go.Scatter(x=result.contexts, y=y, mode="lines", visible=k == 0,
                                     name=f"{s['model']} · {s['hardware']}",
                                     line={"color": colour, "width": 2.3,
                                           "dash": dashes[hardware.index(s["hardware"]) % len(dashes)]},
                                     customdata=np.asarray(s.get("layout", [""] * len(result.contexts)), dtype=object),
                                     hovertemplate="%{x:,.0f} tokens: %{y:.4g} %{customdata}"
                                                   "<extra>%{fullData.name}</extra>"))
    n = len(result.series)
    buttons = []
    for k, (metric, label) in enumerate(metrics):
        visible = [i // n == k for i in range(n * len(metrics))]
        linear = metric in ("max_batch", "devices")
        buttons.append({"label": label, "method": "update",
                        "args": [{"visible": visible},
                                 {"yaxis": {"type": "linear" if linear else "log", "title": label},
                                  "title": {"text": f"{label} vs context (gaps: nothing up to the largest layout "
                                                    "fits)", "x": 0.01, "y": 0.97}}]})
    first = SERVING_METRICS[0][1]
    # the metric menu sits at the top left, clear of plotly's toolbar (top right)
    fig.update_layout(updatemenus=[{"buttons": buttons, "direction": "down", "x": 0.0, "xanchor": "left", "y": 1.02,
                                    "yanchor": "bottom", "showactive": True}],
                      title={"text": f"{first} vs context (gaps: nothing up to the largest layout fits)", "x": 0.01,
                             "y": 0.97},
                      xaxis={"type": "log", "title": "context length (tokens)"},
                      yaxis={"type": "log", "title": first},
                      **{**LAYOUT, "height": 560, "margin": {**LAYOUT["margin"], "t": 110}})
    return fig


def _scenario(rows: list[dict[str, Any]], scenario_name: str) -> Any:
    import plotly.graph_objects as go

    fig = go.Figure()
    labels = [f"{r['model']} · {r['hardware']}" for r in rows]
    kinds = [("prefill", "#1f77b4"), ("cached_input", "#9edae5"), ("decode", "#d62728"), ("cache_hold", "#ff7f0e")]
    for kind, colour in kinds:
        fig.add_trace(go.Bar(x=labels, y=[r["usd_by_kind"].get(kind, 0.0) for r in rows], name=kind,
                             marker={"color": colour}, hovertemplate="%{x}: $%{y:.4f}<extra>" + kind + "</extra>"))
    fig.update_layout(barmode="stack", title={"text": f"scenario {scenario_name}: mean $ per task by kind",
                                              "x": 0.01},
                      yaxis={"title": "USD per task"}, **LAYOUT)
    return fig


def _scenario_section(scenario: str, specs: list, hardware: list[str], dep: Deployment, samples: int,
                      price: float | None, engine: Any, max_devices: int) -> list[tuple[str, Any, str]]:
    """Every model x device pair: on one device where it holds the task, else on the cheapest layout that
    does; pairs that nothing holds, or an engine does not serve, are named in the caption, never dropped."""
    from costsim.analysis.task_costs import summarize
    from costsim.analysis.task_placement import run_answered
    from costsim.inputs.hardware import load_hardware
    from costsim.inputs.scenarios import load_scenario

    sc = load_scenario(scenario)
    rows, missing, placed = [], [], []
    for spec in specs:
        for h in hardware:
            hw_ = load_hardware(h, usd_per_hour=price)
            if engine is not None and hw_.vendor not in engine.vendors:
                missing.append(f"{spec.name} on {h} ({engine.name} does not run on {hw_.vendor})")
                continue
            layout, task = run_answered(sc, spec, hw_, dep, samples, 0, engine, max_devices)
            if not summarize(task)["fits_memory"]:
                missing.append(f"{spec.name} on {h} (no layout up to {max_devices} devices holds the task)")
                continue
            label = h if layout is None else f"{h} x {layout.devices} ({layout.label()})"
            if layout is not None:
                placed.append(f"{spec.name} on {label}")
            rows.append({"model": spec.name, "hardware": label,
                         "usd_by_kind": {k: float(v.mean()) for k, v in task.usd_by_kind.items()}})
    caption = f"{sc.description} ({samples} samples)."
    if placed:
        caption += " One device does not hold the task, so the cheapest layout that does: " + "; ".join(placed) + "."
    if missing:
        caption += " Not shown: " + "; ".join(missing) + "."
    return [("Scenario", _scenario(rows, sc.name), caption)]


def _validation(hardware: list[str]) -> tuple[Any, str]:
    """Median and p90 |error| per op class on each device's committed measurements."""
    import plotly.graph_objects as go

    from costsim.evidence.validate import validate
    from costsim.inputs.data import data_dir
    from costsim.inputs.measurements import read_measurements

    folder = data_dir("measurements")
    fig = go.Figure()
    notes = []
    measured = []
    for j, hw in enumerate(hardware):
        files = sorted(folder.glob(f"{hw}*.jsonl")) if folder.is_dir() else []
        if not files:
            notes.append(f"{hw}: never measured here; its predictions carry at least the error of a fit moved "
                         "between two measured devices (docs/validation.md gives that figure)")
            continue
        records = [r for f in files for r in read_measurements(f)]
        summary = validate(records, hw)["summary"]["by_op"]
        ops = [op for op in summary if op != "launch"]
        measured.append(hw)
        fig.add_trace(go.Bar(x=ops, y=[summary[o]["median_abs"] * 100 for o in ops], name=f"{hw} median",
                             marker={"color": PALETTE[j % len(PALETTE)]},
                             error_y={"type": "data", "symmetric": False,
                                      "array": [(summary[o]["p90_abs"] - summary[o]["median_abs"]) * 100 for o in ops],
                                      "arrayminus": [0.0] * len(ops)},
                             hovertemplate="%{x}: median %{y:.1f}%<extra>" + hw + " (bar to p90)</extra>"))
    if not measured:
        return None, "; ".join(notes)
    fig.update_layout(barmode="group", title={"text": "timing model error on measured kernels and model steps "
                                                      "(median, whisker to p90)", "x": 0.01},
                      yaxis={"title": "|predicted / measured - 1| (%)"}, **LAYOUT)
    return fig, "; ".join(notes)


def build_report(models: list[str], hardware: list[str], scenario: str | None = None,
                 contexts: np.ndarray | None = None, dep: Deployment | None = None, samples: int = 500,
                 price: float | None = None, plan_auto: bool = True, max_devices: int = 72,
                 engine: Any = "vllm") -> tuple[str, int]:
    """The HTML page and how many charts it holds; `engine` as in sweep (vllm by default, None or 'none' for
    costsim's own kernel list: the frontier chart is then vLLM's)."""
    import plotly.offline

    from costsim.analysis.sweeps import sweep
    from costsim.inputs.engines import engine_or_none
    from costsim.inputs.hardware import load_hardware
    from costsim.inputs.models import load_model

    engine = engine_or_none(engine)
    dep = dep or Deployment()
    if not models or not hardware:
        raise CostsimError("report: give at least one --model and one --hardware")
    contexts = np.unique(np.round(np.geomspace(1024, 10_000_000, 60))) if contexts is None else contexts
    specs = [load_model(m) for m in models]
    result = sweep(models, hardware, contexts, dep, None, price, None, plan_auto, max_devices, engine=engine)
    figures: list[tuple[str, Any, str]] = [
        ("Anatomy", _anatomy(specs), "Mixer family of every layer and where the parameters are; "
                                     "letters: " + ", ".join(f"{k}={v}" for k, v in PATTERN_LETTERS.items())),
        ("Memory", _cache(specs, contexts, dep), "What one sequence holds at each context: the growing KV / latent "
                                                 "cache plus windows and recurrent state that stop growing."),
        ("Serving", _serving(result),
         (f"Per point, the cheapest parallel layout up to {max_devices} devices (hover for it; "
          "docs/deployments.md), " if plan_auto else
          "One device per system where it fits, else the cheapest layout that does (hover for it), ")
         + "the largest batch that fits; "
         "one line style per "
         "accelerator; the menu switches the metric (including devices per system)."),
    ]
    if scenario is not None:
        figures += _scenario_section(scenario, specs, hardware, dep, samples, price, engine, max_devices)
    from costsim.inputs.engines import load_engine
    from costsim.output.plots import frontier_figure
    from costsim.serving.frontier import frontier

    served_by = engine if engine is not None else load_engine(None)
    devices = [load_hardware(h, usd_per_hour=price) for h in hardware]
    front = frontier(specs[0], devices, dep, served_by,
                     1024, 1024, min(max_devices, 8))
    if any(h.get("frontier") for h in front["hardware"]):
        figures.append(("Frontier", frontier_figure(front),
                        f"{specs[0].name} served by {served_by.display_name}, 1k in / 1k out: output tokens/s per "
                        "device against tokens/s per user over layouts up to 8 devices and concurrency levels; hover "
                        "for layout, users and $/Mtok (docs/serving.md)."))
    validation, note = _validation([hw.name for hw in devices])
    if validation is not None:
        figures.append(("Accuracy", validation, note or "Every committed measurement of these devices."))
    title = f"costsim report: {', '.join(models)} on {', '.join(hardware)}"
    sections = []
    for name, fig, caption in figures:
        div = fig.to_html(full_html=False, include_plotlyjs=False, config={"displaylogo": False, "responsive": True})
        sections.append(f"<section><h2>{html.escape(name)}</h2><p>{html.escape(caption)}</p>{div}</section>")
    if validation is None and note:
        sections.append(f"<section><h2>Accuracy</h2><p>{html.escape(note)}</p></section>")
    bands = "; ".join(f"{hw.name}: {hw.calibration.label()}" for hw in devices)
    sections.append(f"<section><h2>Error bands</h2><p>Every time and dollar figure above carries its device's "
                    f"error band against evidence its fit did not see (docs/hardware.md): {html.escape(bands)}."
                    "</p></section>")
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<script type="text/javascript">{plotly.offline.get_plotlyjs()}</script>
<style>body{{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1200px;margin:24px auto;
padding:0 16px;color:#222}} h1{{font-size:22px}} h2{{font-size:18px;margin:28px 0 4px}} p{{color:#555;margin:4px 0 8px}}
section{{border-top:1px solid #eee;padding-top:8px}} footer{{color:#888;font-size:12px;margin:24px 0}}</style>
</head><body><h1>{html.escape(title)}</h1>
<p>{html.escape(f"{dep.weights} weights, {dep.kv_cache} cache, {dep.state} state; "
                f"{'the cheapest layout per point' if plan_auto else 'one device where it fits'}; "
                f"contexts {int(contexts[0]):,} to {int(contexts[-1]):,} tokens; the scenario on one device where "
                "it holds the task, else on the cheapest layout that does.")}</p>
{''.join(sections)}
<footer>costsim, {dt.date.today().isoformat()}: formulas in docs/methodology.md, timing in docs/timing.md,
measured error in docs/validation.md.</footer></body></html>"""
    return page, len(figures)


def write_report(path: str | Path, page: str) -> None:
    from costsim.output.atomic import write_atomic

    write_atomic(path, page)
