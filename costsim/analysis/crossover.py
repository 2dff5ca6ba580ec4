"""Where one model becomes cheaper (or faster) than another as the context grows (`costsim crossover`).

Both models are evaluated on a dense log grid of contexts (one vectorised call each); a change of sign
of log(metric_B) - log(metric_A) brackets a crossing, and scipy's brentq refines it on the engine's
own function (a point that does not fit in memory counts as infinitely costly). With `--plan auto`
the per-point layout search is too costly to call inside a root finder, so the crossing is
interpolated on the grid instead (log-log linear between the bracketing points).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from costsim.analysis.sweeps import METRICS, sweep
from costsim.errors import CostsimError
from costsim.spec.deployment import Deployment
from costsim.spec.layout import Layout

HIGHER_IS_BETTER = {"decode_tokens_per_s", "prefill_tokens_per_s", "max_batch"}


def _curve(model: str, hardware: str, contexts: np.ndarray, metric: str, dep: Deployment,
           layout: Layout | None, plan_auto: bool, price: float | None, engine: Any = None) -> np.ndarray:
    # both curves on the same system: a model that stops fitting there stops (a crossing of cause "memory"),
    # it does not move to a bigger layout unless --plan auto asks for that
    s = sweep([model], [hardware], contexts, dep, None, price, layout, plan_auto, engine=engine,
              single_device=True).series[0]
    values = np.asarray(s[metric], dtype=np.float64)
    worst = 0.0 if metric in HIGHER_IS_BETTER else np.inf
    return np.where(np.asarray(s["fits_memory"], dtype=bool), values, worst)


def crossover(model_a: str, model_b: str, hardware: str, metric: str = "usd_per_mtok_output",
              lo: float = 1024.0, hi: float = 10_000_000.0, dep: Deployment | None = None,
              layout: Layout | None = None, plan_auto: bool = False, price: float | None = None,
              points: int = 240, engine: Any = "vllm") -> dict[str, Any]:
    """The contexts where B and A swap places on `metric`, which is better on each side, and both curves;
    `engine` as in sweep (vllm by default, None or 'none' for costsim's own kernel list)."""
    from scipy.optimize import brentq

    if metric not in METRICS:
        raise CostsimError(f"--metric: '{metric}' is not one of {', '.join(METRICS)}")
    if model_a == model_b:
        raise CostsimError("crossover: give two different models (--model A --model B)")
    dep = dep or Deployment()
    grid = np.unique(np.round(np.geomspace(lo, hi, points)))
    a = _curve(model_a, hardware, grid, metric, dep, layout, plan_auto, price, engine)
    b = _curve(model_b, hardware, grid, metric, dep, layout, plan_auto, price, engine)
    sign = 1.0 if metric in HIGHER_IS_BETTER else -1.0

    def advantage_b(values_a: np.ndarray, values_b: np.ndarray) -> np.ndarray:
        """> 0 where B is better; +-inf where only one fits; nan where neither does."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return sign * (np.log(values_b) - np.log(values_a))

    adv = advantage_b(a, b)
    valid = ~np.isnan(adv)  # nan: neither model fits there
    crossings = []
    idx = np.nonzero(valid[:-1] & valid[1:] & (np.sign(adv[:-1]) != np.sign(adv[1:])) & (adv[:-1] != 0))[0]
    for i in idx:
        t0, t1 = float(grid[i]), float(grid[i + 1])
        if np.isinf(adv[i]) or np.isinf(adv[i + 1]):
            t_star = t1  # one model stops fitting in memory here
            why = "memory"
        elif plan_auto:
            f0, f1 = adv[i], adv[i + 1]
            t_star = float(np.exp(np.log(t0) + (np.log(t1) - np.log(t0)) * f0 / (f0 - f1)))
            why = metric
        else:
            def g(t: float) -> float:
                point = np.array([t])
                return float(advantage_b(_curve(model_a, hardware, point, metric, dep, layout, False, price, engine),
                                         _curve(model_b, hardware, point, metric, dep, layout, False, price,
                                                engine))[0])

            t_star = float(brentq(g, t0, t1, xtol=1.0, rtol=1e-6))
            why = metric
        crossings.append({"context_tokens": t_star, "better_below": model_b if adv[i] > 0 else model_a,
                          "better_above": model_b if adv[i + 1] > 0 else model_a, "cause": why})
    finite = adv[np.isfinite(adv)]
    # with no crossing, one model is better wherever both fit (None: they never both fit)
    everywhere = None if crossings or finite.size == 0 else (model_b if np.median(finite) > 0 else model_a)
    return {"model_a": model_a, "model_b": model_b, "hardware": hardware, "metric": metric,
            "layout": "plan auto" if plan_auto else (layout.label() if layout else "single device"),
            "crossings": crossings, "contexts": grid, "a": a, "b": b,
            "better_everywhere": everywhere}


def crossover_figure(result: dict[str, Any]):
    import plotly.graph_objects as go

    from costsim.output.plots import LABELS

    fig = go.Figure()
    for key, model, color in (("a", result["model_a"], "#1f77b4"), ("b", result["model_b"], "#d62728")):
        y = np.where(np.isfinite(result[key]) & (result[key] > 0), result[key], np.nan)
        fig.add_trace(go.Scatter(x=result["contexts"], y=y, mode="lines", name=model, line={"color": color,
                                                                                         "width": 2.5}))
    for key, model, color in (("a", result["model_a"], "#1f77b4"), ("b", result["model_b"], "#d62728")):
        runs = np.isfinite(result[key]) & (result[key] > 0)
        if runs.any() and not runs[-1]:  # the curve stops: say where and why, at its last point
            last = int(np.nonzero(runs)[0].max())
            fig.add_annotation(x=np.log10(result["contexts"][last]), y=np.log10(result[key][last]),
                               text=f"{model} stops fitting in memory past {result['contexts'][last]:,.0f} tokens",
                               showarrow=True, arrowhead=2, ax=-40, ay=-40, font={"color": color})
    for c in result["crossings"]:
        why = " (one stops fitting)" if c.get("cause") == "memory" else ""
        fig.add_vline(x=c["context_tokens"], line={"color": "#555", "dash": "dash"},
                      annotation_text=f"{c['context_tokens']:,.0f} tokens{why}", annotation_position="top")
    metric = result["metric"]
    fig.update_layout(template="plotly_white", height=520, width=1000,
                      title={"text": f"{LABELS.get(metric, metric)}: {result['model_b']} vs {result['model_a']} on "
                                     f"{result['hardware']} ({result['layout']})", "x": 0.02},
                      xaxis={"type": "log", "title": "context length (tokens)"},
                      yaxis={"type": "log", "title": LABELS.get(metric, metric)},
                      margin={"l": 70, "r": 20, "t": 70, "b": 60})
    return fig
