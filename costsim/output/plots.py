"""Plotly charts, written as one self-contained HTML file that works offline."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from costsim.output.atomic import write_atomic

LABELS = {
    "usd_per_mtok_output": "USD per million output tokens",
    "usd_per_mtok_input": "USD per million input tokens",
    "usd_per_mtok_cached_input": "USD per million cached input tokens",
    "tpot_s": "time per output token (s)",
    "ttft_s": "time to first token (s)",
    "decode_tokens_per_s": "decode tokens/s per device",
    "prefill_tokens_per_s": "prefill tokens/s",
    "max_batch": "max sequences that fit",
    "cache_bytes_per_sequence": "cache per sequence (bytes)",
}


def _point_labels(s: dict[str, Any], i: int) -> str:
    devices = int(s["devices"][i]) if "devices" in s else 1
    where = f"{devices} x {s['hardware']} ({s['layout'][i]})" if devices > 1 else f"1 x {s['hardware']}"
    return f"{where}, batch {int(s['batch'][i]):,}"


def sweep_figure(result, metric: str):
    """One line per model x hardware where it runs (hover: devices, layout, batch); points where nothing runs
    are x markers on a strip at the bottom, with no value."""
    import plotly.graph_objects as go

    fig = go.Figure()
    palette = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2",
               "#7f7f7f", "#bcbd22"]
    any_unfit = False
    for i, s in enumerate(result.series):
        y = np.asarray(s[metric], dtype=float)
        fits = np.asarray(s["fits_memory"], dtype=bool)
        color = palette[i % len(palette)]
        name = f"{s['model']} · {s['hardware']}"
        hover = [_point_labels(s, j) for j in range(len(result.contexts))]
        fig.add_trace(go.Scatter(x=result.contexts, y=np.where(fits, y, np.nan), mode="lines", name=name,
                                 line={"color": color, "width": 2.5}, legendgroup=name, text=hover,
                                 hovertemplate="%{x:,.0f} tokens: %{y:.4g}<br>%{text}<extra>" + name + "</extra>"))
        devices = np.asarray(s.get("devices", np.ones(len(fits))), dtype=float)
        placed = fits & (devices > 1)
        if placed.any() and not placed.all():  # where the line leaves one device for a layout, say so on it
            fig.add_trace(go.Scatter(x=np.asarray(result.contexts)[placed], y=y[placed], mode="markers",
                                     name=f"{name}: on a multi-device layout", legendgroup=name,
                                     marker={"color": color, "symbol": "circle-open", "size": 7},
                                     text=[hover[j] for j in np.nonzero(placed)[0]],
                                     hovertemplate="%{x:,.0f} tokens: %{y:.4g}<br>%{text}<extra>" + name +
                                                   "</extra>"))
        if not fits.all():
            any_unfit = True
            fig.add_trace(go.Scatter(x=np.asarray(result.contexts)[~fits], y=np.full(int((~fits).sum()), 0.02),
                                     yaxis="y2", mode="markers", name=f"{name}: does not fit",
                                     marker={"color": color, "symbol": "x", "size": 8}, legendgroup=name,
                                     hovertemplate="%{x:,.0f} tokens: does not fit<extra>" + name + "</extra>"))
    title = f"{LABELS.get(metric, metric)} vs context"
    if any_unfit:
        title += " (x at the bottom: does not fit, no value)"
    fig.update_layout(
        template="plotly_white",
        title={"text": title, "x": 0.02},
        xaxis={"type": "log", "title": "context length (tokens)"},
        yaxis={"type": "log" if metric != "max_batch" else "linear", "title": LABELS.get(metric, metric)},
        yaxis2={"overlaying": "y", "range": [0, 1], "visible": False, "fixedrange": True},
        legend={"orientation": "v", "x": 1.02, "y": 1},
        margin={"l": 70, "r": 20, "t": 60, "b": 60},
        height=560, width=1100,
    )
    return fig


def compare_figure(rows: list[dict[str, Any]], metric: str):
    """Bars for the devices where the model runs (multi-device systems labelled with their layout), best first;
    devices where nothing runs follow as x markers on the baseline, with no bar and no value."""
    import plotly.graph_objects as go

    runs = sorted((r for r in rows if r["fits_memory"] and np.isfinite(r[metric])), key=lambda r: r[metric])
    unfit = [r for r in rows if not (r["fits_memory"] and np.isfinite(r[metric]))]

    def name(r: dict[str, Any]) -> str:
        devices = int(r.get("devices", 1) or 1)
        return f"{r['hardware']} x {devices}" if devices > 1 else r["hardware"]

    fig = go.Figure(go.Bar(x=[name(r) for r in runs], y=[r[metric] for r in runs], marker_color="#2ca02c",
                           text=[f"{r[metric]:.3g}" for r in runs], textposition="outside", name="runs",
                           customdata=[f"{r.get('layout', 'single')}, batch {int(r['batch']):,}" for r in runs],
                           hovertemplate="%{x}: %{y:.4g}<br>%{customdata}<extra></extra>"))
    if unfit:
        fig.add_trace(go.Scatter(x=[r["hardware"] for r in unfit], y=[0.0] * len(unfit), mode="markers",
                                 marker={"symbol": "x", "size": 10, "color": "#888"},
                                 name="does not fit (no value)",
                                 hovertext=[r.get("reason") or "does not fit on any layout considered" for r in unfit],
                                 hoverinfo="text"))
    fig.update_layout(template="plotly_white", title=f"{rows[0]['model']}: {LABELS.get(metric, metric)} at "
                      f"{rows[0]['context_tokens']:,} tokens (x N: the cheapest layout that fits; x marker: does not "
                      "fit)", yaxis={"title": LABELS.get(metric, metric)}, height=520, width=1100,
                      xaxis={"categoryorder": "array", "categoryarray": [name(r) for r in runs] +
                             [r["hardware"] for r in unfit]})
    return fig


def write_html(fig, path: str | Path) -> None:
    # include_plotly_js=True embeds the library: the file opens offline
    write_atomic(path, fig.to_html(include_plotlyjs=True, full_html=True))


def validation_figure(records: list[dict[str, Any]]):
    """Predicted vs measured, log-log, identity line, one colour per (op, family)."""
    import plotly.graph_objects as go

    fig = go.Figure()
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in records:
        groups.setdefault(f"{r['op']} / {r['family']}", []).append(r)
    lo = min(min(r["time_s"], r["predicted_s"]) for r in records)
    hi = max(max(r["time_s"], r["predicted_s"]) for r in records)
    fig.add_trace(go.Scatter(x=[lo, hi], y=[lo, hi], mode="lines", name="predicted = measured",
                             line={"color": "#444", "dash": "dash"}))
    for label, rs in sorted(groups.items()):
        fig.add_trace(go.Scatter(x=[r["time_s"] for r in rs], y=[r["predicted_s"] for r in rs], mode="markers",
                                 name=label, marker={"size": 6, "opacity": 0.75},
                                 text=[f"{r['source']} {r['hardware']} err {r['error']:+.0%}" for r in rs]))
    fig.update_layout(template="plotly_white", title="kernel time: predicted vs measured",
                      xaxis={"type": "log", "title": "measured (s)"}, yaxis={"type": "log", "title": "predicted (s)"},
                      height=700, width=1100)
    return fig


def scenario_figure(title: str, tasks: list[tuple[str, Any]]):
    """Cost per turn, stacked by kind (mean over samples), and the context kept after each turn, for
    each (label, TaskCost) — one row of panels per deployment."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    colors = {"prefill": "#d62728", "cached_input": "#2ca02c", "decode": "#1f77b4", "cache_hold": "#9467bd"}
    fig = make_subplots(rows=len(tasks), cols=1, shared_xaxes=True, vertical_spacing=0.08,
                        specs=[[{"secondary_y": True}] for _ in tasks], subplot_titles=[label for label, _ in tasks])
    for row, (_, task) in enumerate(tasks, start=1):
        turns = np.arange(1, len(task.per_turn_usd) + 1)
        for kind, color in colors.items():
            values = [float(np.mean(t[kind])) for t in task.per_turn_by_kind]
            fig.add_trace(go.Bar(x=turns, y=values, name=kind.replace("_", " "), marker_color=color,
                                 legendgroup=kind, showlegend=row == 1), row=row, col=1, secondary_y=False)
        context = [float(np.mean(c)) for c in task.per_turn_context]
        fig.add_trace(go.Scatter(x=turns, y=context, name="context kept (tokens)", line={"color": "#444", "width": 2},
                                 legendgroup="ctx", showlegend=row == 1), row=row, col=1, secondary_y=True)
        fig.update_yaxes(title_text="USD per turn", row=row, col=1, secondary_y=False)
        fig.update_yaxes(title_text="tokens", row=row, col=1, secondary_y=True)
    fig.update_xaxes(title_text="turn", row=len(tasks), col=1)
    fig.update_layout(template="plotly_white", barmode="stack", title=title, height=320 * len(tasks) + 120,
                      width=1100)
    return fig


def frontier_figure(result: dict[str, Any]):
    """Output tokens/s per device against tokens/s per user, one frontier line per hardware (the
    InferenceX / AIConfigurator view); hover shows layout, concurrency and $/Mtok."""
    import plotly.graph_objects as go

    fig = go.Figure()
    for hw in result["hardware"]:
        pts = hw.get("frontier") or []
        if not pts:
            continue
        fig.add_trace(go.Scatter(
            x=[p["tokens_per_s_per_user"] for p in pts], y=[p["output_tokens_per_s_per_device"] for p in pts],
            mode="lines+markers", name=hw["hardware"],
            text=[f"{p['layout']} · {p['concurrency']:.0f} users · ${p['usd_per_mtok_output']:.3f}/Mtok"
                  for p in pts], hovertemplate="%{text}<br>%{x:.1f} tok/s/user, %{y:,.0f} tok/s/device<extra></extra>"))
    fig.update_layout(title=f"{result['model']} · {result['engine']} · {result['isl']:,} in / {result['osl']:,} out: "
                            "throughput vs interactivity", xaxis_title="tokens/s per user (interactivity)",
                      yaxis_title="output tokens/s per device", template="plotly_white")
    return fig
