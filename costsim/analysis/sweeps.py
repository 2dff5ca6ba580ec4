"""Sweeps over context length for several models and accelerators, and per-device comparisons.

Each (model, hardware) pair is one vectorised evaluation over all contexts; results come back as
columns of numpy arrays (``pandas.DataFrame(result.columns())`` works where pandas is installed).
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from costsim.engine.stacked import StackedHardware
from costsim.errors import CostsimError
from costsim.inputs.hardware import hardware_names, load_hardware
from costsim.inputs.models import load_model
from costsim.serving.capacity import evaluate
from costsim.spec.deployment import Deployment
from costsim.spec.layout import Layout
from costsim.units import parse_tokens

# figures that exist only for a configuration that runs: NaN (null in JSON, '-' in tables) where none does
TIMED_METRICS = ("usd_per_mtok_output", "usd_per_mtok_input", "usd_per_mtok_cached_input", "tpot_s", "ttft_s",
                 "decode_tokens_per_s", "prefill_tokens_per_s")
METRICS = ("usd_per_mtok_output", "usd_per_mtok_input", "usd_per_mtok_cached_input", "tpot_s", "ttft_s",
           "decode_tokens_per_s", "prefill_tokens_per_s", "max_batch", "cache_bytes_per_sequence")


@dataclass
class SweepResult:
    contexts: np.ndarray
    series: list[dict[str, Any]] = field(default_factory=list)  # model, hardware, and one array per metric
    profiles: dict[str, Any] = field(default_factory=dict)  # hardware name -> the profile its series ran on

    def columns(self) -> dict[str, np.ndarray]:
        """Long format: one row per (model, hardware, context)."""
        cols: dict[str, list] = {"model": [], "hardware": [], "context_tokens": []}
        for s in self.series:
            n = len(self.contexts)
            cols["model"] += [s["model"]] * n
            cols["hardware"] += [s["hardware"]] * n
            cols["context_tokens"] += list(self.contexts)
            for m in (*METRICS, "batch", "fits_memory", "devices", "layout"):
                if m in s:
                    cols.setdefault(m, []).extend(np.asarray(s[m]).tolist())
        return {k: np.asarray(v) for k, v in cols.items()}


def parse_context_range(text: str, points: int) -> np.ndarray:
    """'1k..10M' -> `points` log-spaced whole token counts; a single value -> that one."""
    if points < 2 and ".." in text:
        raise CostsimError(f"--points: need at least 2 points for a range, got {points}")
    if ".." not in text:
        return np.array([parse_tokens(text, "--context")], dtype=np.float64)
    lo_text, hi_text = text.split("..", 1)
    lo, hi = parse_tokens(lo_text, "--context"), parse_tokens(hi_text, "--context")
    if hi <= lo:
        raise CostsimError(f"--context: the range must increase, got {text}")
    return np.unique(np.round(np.logspace(np.log10(lo), np.log10(hi), points)))


def split_names(text: str, field_name: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise CostsimError(f"{field_name}: give at least one name")
    return names


def _progress(done: int, total: int, started: float) -> None:
    """A one-line progress bar on stderr, only for sweeps past a second and only on a terminal."""
    if time.perf_counter() - started < 1.0 or not sys.stderr.isatty():
        return
    width = 30
    filled = int(width * done / total)
    sys.stderr.write(f"\rsweep [{'#' * filled}{'.' * (width - filled)}] {done}/{total} model x hardware pairs")
    if done == total:
        sys.stderr.write("\n")
    sys.stderr.flush()


def sweep(models: list[str], hardware: list[str], contexts: np.ndarray, dep: Deployment | None = None,
          batch: int | None = None, price: float | None = None, layout: Layout | None = None,
          plan_auto: bool = False, max_devices: int = 72, engine: Any = "vllm",
          single_device: bool = False) -> SweepResult:
    """Every model x hardware pair evaluated over all `contexts` (one vectorised call per pair).
    With `layout`, every pair runs that parallel layout; with `plan_auto`, each context gets the
    cheapest layout up to `max_devices`. Otherwise one device per point, and where one device does not
    hold the model (at the largest batch), the cheapest layout that does, unless `single_device`. Series
    carry `devices` and `layout` per context; timed figures are NaN where nothing up to `max_devices`
    runs. Each system runs as `engine` (a profile, or a name: vllm by default) runs it: its pool, kernels,
    CPU time; None or 'none': costsim's own kernel list and 10% reserve."""
    from costsim.inputs.engines import engine_or_none

    engine = engine_or_none(engine)
    dep = dep or Deployment()
    fall_back = layout is None and not plan_auto and not single_device and batch is None
    chosen_layout = layout is not None or plan_auto
    if engine is not None and not chosen_layout:
        layout = Layout()  # an engine's rules live in the per-layout path
    started = time.perf_counter()
    if hardware == ["all"]:
        hardware = hardware_names()
    result = SweepResult(contexts=contexts)
    specs = [load_model(m) for m in models]
    profiles = [load_hardware(h, usd_per_hour=price) for h in hardware]
    result.profiles = {hw.name: hw for hw in profiles}
    if layout is not None or plan_auto:
        if batch is not None and chosen_layout:
            raise CostsimError("--batch: with --layout or --plan auto the batch is the largest that fits; drop it")
        from costsim.serving.layouts import layout_grid
        from costsim.serving.plan import best_layout_grid

        grid = np.asarray(contexts, dtype=np.float64)
        for spec in specs:
            for hw in profiles:
                if engine is not None:
                    from costsim.serving.engines import check_serves

                    try:
                        check_serves(engine, spec, hw)
                    except CostsimError as exc:  # this engine cannot serve it here: no figures, the reason
                        result.series.append(_refused(spec.name, hw.name, grid, str(exc).removeprefix("--engine: ")))
                        continue
                if plan_auto:
                    values = best_layout_grid(spec, hw, dep, grid, max_devices, engine=engine)
                else:
                    values = layout_grid(spec, hw, dep, layout, grid, engine=engine, batch=batch)
                    values["layout"] = np.full(grid.shape, layout.label(), dtype=object)
                    if fall_back:
                        values = _place_where_needed(values, spec, hw, dep, grid, max_devices, engine)
                result.series.append(_mask_unfit({"model": spec.name, "hardware": hw.name, **values}))
                _progress(len(result.series), len(specs) * len(profiles), started)
        return result
    stacked = StackedHardware(profiles)
    grid = np.asarray(contexts, dtype=np.float64).reshape(1, -1)
    for spec in specs:
        # all devices in one pass: arrays come back devices x contexts
        values = evaluate(spec, stacked, dep, grid, batch)
        rows = {k: np.broadcast_to(v, (len(profiles), grid.shape[1])) for k, v in values.items()}
        for i, hw in enumerate(profiles):
            values = {k: np.array(v[i]) for k, v in rows.items()}
            values["devices"] = np.ones(grid.shape[1])
            values["layout"] = np.full(grid.shape[1], Layout().label(), dtype=object)
            if fall_back:
                values = _place_where_needed(values, spec, hw, dep, grid[0], max_devices, None)
            result.series.append(_mask_unfit({"model": spec.name, "hardware": hw.name, **values}))
        _progress(len(result.series), len(specs) * len(profiles), started)
    return result


def _place_where_needed(values: dict[str, Any], spec: Any, hw: Any, dep: Deployment, grid: np.ndarray,
                        max_devices: int, engine: Any) -> dict[str, Any]:
    """One device's figures, replaced by the cheapest layout that fits at the points one device cannot hold."""
    fits = np.asarray(values["fits_memory"], dtype=bool)
    if fits.all():
        return values
    from costsim.serving.plan import best_layout_grid

    need = ~fits  # only the points one device cannot hold are searched
    best = best_layout_grid(spec, hw, dep, np.asarray(grid, dtype=np.float64)[need], max_devices, engine=engine)
    found = np.asarray(best["fits_memory"], dtype=bool)
    take = need.copy()
    take[need] = found
    out = dict(values)
    for key, v in best.items():
        if key in out and key not in ("layout", "fits_memory"):
            column = np.array(out[key], dtype=np.float64)
            column[take] = np.asarray(v, dtype=np.float64)[found]
            out[key] = column
    layout = np.array(values["layout"], dtype=object)
    layout[take] = np.asarray(best["layout"], dtype=object)[found]
    out["layout"] = layout
    out["fits_memory"] = fits | take
    return out


def _mask_unfit(series: dict[str, Any]) -> dict[str, Any]:
    fits = np.asarray(series["fits_memory"], dtype=bool)
    for key in TIMED_METRICS:
        if key in series:
            series[key] = np.where(fits, np.asarray(series[key], dtype=np.float64), np.nan)
    return series


def _refused(model: str, hardware: str, grid: np.ndarray, reason: str) -> dict[str, Any]:
    nothing = np.full(grid.shape, np.nan)
    return {"model": model, "hardware": hardware, **dict.fromkeys(METRICS, nothing), "batch": np.zeros(grid.shape),
            "max_batch": np.zeros(grid.shape), "fits_memory": np.zeros(grid.shape, dtype=bool),
            "devices": np.zeros(grid.shape), "layout": np.full(grid.shape, "none", dtype=object), "reason": reason}


def compare(model: str, hardware: list[str], context: int, dep: Deployment | None = None,
            price: float | None = None, layout: Layout | None = None, plan_auto: bool = False,
            max_devices: int = 72, engine: Any = "vllm", single_device: bool = False) -> list[dict[str, Any]]:
    """One row per device: fits, max batch, TTFT, TPOT, tokens/s and $/Mtok at one context (per
    accelerator, or per system of `layout` / of the cheapest layout with `plan_auto`; where one device does
    not hold the model, the cheapest layout that does, unless `single_device`)."""
    result = sweep([model], hardware, np.array([float(context)]), dep, None, price, layout, plan_auto, max_devices,
                   engine, single_device)
    rows = []
    for s in result.series:
        rows.append({"model": s["model"], "hardware": s["hardware"], "context_tokens": context,
                     **{k: (v if k == "reason" else np.asarray(v).item()) for k, v in s.items()
                        if k not in ("model", "hardware")},
                     **result.profiles[s["hardware"]].evidence_fields()})
    return rows
