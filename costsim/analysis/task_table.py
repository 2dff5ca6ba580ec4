"""`costsim scenario run`'s rows: one agent task for every model x hardware pair (on one device, the
cheapest layout that holds it, or a given layout), and the same task priced at providers' API prices."""

from __future__ import annotations

from typing import Any

from costsim.analysis.task_costs import TaskCost, run_task, summarize, summarize_api
from costsim.analysis.task_placement import run_answered
from costsim.inputs.hardware import load_hardware
from costsim.inputs.models import load_model
from costsim.inputs.scenarios import load_api_price
from costsim.spec.deployment import Deployment
from costsim.spec.layout import Layout
from costsim.spec.scenario import Scenario


def task_rows(sc: Scenario, scenario_name: str, models: list[str], hardware: list[str], dep: Deployment,
              samples: int, seed: int, engine: Any, layout: Layout | None, max_devices: int, single_device: bool,
              price: float | None = None,
              api_sheets: list[str] | None = None) -> tuple[list[dict[str, Any]], list[tuple[str, TaskCost]]]:
    """The rows (docs/contracts.md) and, for the chart, each configuration that holds the task with its
    label; an engine that cannot serve a pair refuses in one line."""
    rows: list[dict[str, Any]] = []
    charted: list[tuple[str, TaskCost]] = []
    for m in models:
        spec = load_model(m)
        for h in hardware:
            hw = load_hardware(h, usd_per_hour=price)
            if engine is not None:
                from costsim.serving.engines import check_serves

                check_serves(engine, spec, hw)
            if layout is None:
                used, task = run_answered(sc, spec, hw, dep, samples, seed, engine, max_devices, single_device)
            else:
                used, task = layout, run_task(sc, spec, hw, dep, samples, seed, layout=layout, engine=engine)
            summary = summarize(task)
            if layout is None:
                if used is not None:
                    summary["placement"] = (f"cheapest layout that holds the task (one {hw.name} does not; "
                                            "--single-device keeps one)")
                elif not summary["fits_memory"]:
                    summary["reason"] = (f"one {hw.name} does not hold the task's peak cache" +
                                         ("" if single_device else f", nor any layout up to {max_devices} devices")
                                         + f"; try `costsim scenario run {scenario_name} -m {m} -H {h}`"
                                         + (" without --single-device" if single_device else " --weight-dtype fp8"))
            where = hw.name if used is None else f"{hw.name} x {used.devices} ({used.label()})"
            rows.append({"scenario": sc.name, "model": spec.name, "hardware": where,
                         "devices": 1 if used is None else used.devices,
                         "layout": "single" if used is None else used.label(), **summary})
            if rows[-1]["fits_memory"]:
                charted.append((f"{spec.name} on {where}", task))
    for sheet in api_sheets or []:
        api = load_api_price(sheet)
        # token counts do not depend on the model here: the provider's own tokenizer is not modelled
        task = run_task(sc, load_model(models[0]), load_hardware(hardware[0]), dep, samples, seed, api, engine=None)
        rows.append({"scenario": sc.name, "model": api.model, "hardware": f"api:{api.name}", **summarize_api(task)})
    return rows, charted
