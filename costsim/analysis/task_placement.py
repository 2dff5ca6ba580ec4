"""An agent task one device cannot hold, answered on the cheapest layout that holds it.

A full task run on a layout costs about half a second whatever the sample count (its setup dominates), so
the search first drops, cheaply, every layout whose devices cannot hold one sequence of the largest context
the task keeps between turns (a necessary condition: the task's peak is at least that), then runs the task
on the layouts left with the fewest devices, up to twice that count and at most RUN_LAYOUTS of them, and
keeps the cheapest that holds the task's peak cache. A task runs one conversation at a time, so more
devices shorten it but rarely make it cheaper.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from costsim.analysis.task_costs import TaskCost, run_task, summarize
from costsim.errors import CostsimError
from costsim.serving.layouts import Replica
from costsim.serving.plan import enumerate_layouts
from costsim.spec.deployment import Deployment
from costsim.spec.hardware import HardwareProfile
from costsim.spec.layout import Layout
from costsim.spec.model import ModelSpec
from costsim.spec.scenario import Scenario

RUN_LAYOUTS = 8


def cheapest_task_layout(scenario: Scenario, spec: ModelSpec, hw: HardwareProfile, dep: Deployment,
                         samples: int, seed: int, engine: Any = None, max_devices: int = 72,
                         alone: TaskCost | None = None) -> tuple[Layout, TaskCost] | None:
    """(layout, the full task run on it) for the cheapest layout that holds the task, or None. `alone`: the
    task already run on one device (its kept contexts bound the search)."""
    if alone is None:
        alone = run_task(scenario, spec, hw, dep, samples, seed, engine=engine)
    kept = float(max(np.max(c) for c in alone.per_turn_context)) if alone.per_turn_context else 1.0
    holding = []
    for layout in sorted(enumerate_layouts(spec, hw, max_devices), key=lambda lay: lay.devices):
        if layout.devices < 2:
            continue
        try:
            if Replica(spec, hw, dep, layout, True, engine=engine).max_batch_at(np.asarray(max(kept, 1.0))) >= 1:
                holding.append(layout)
        except CostsimError:
            continue  # a layout this model's shapes do not divide into, or that needs a missing network
    if not holding:
        return None
    best: tuple[float, Layout, TaskCost] | None = None
    fewest = runs = held = 0
    for layout in holding:
        if best is not None and (layout.devices > 2 * fewest or held >= RUN_LAYOUTS):
            break
        if runs >= 4 * RUN_LAYOUTS:  # the kept context bounds the peak from below only: stop somewhere
            break
        task = run_task(scenario, spec, hw, dep, samples, seed, layout=layout, engine=engine)
        runs += 1
        summary = summarize(task)
        if not summary["fits_memory"]:
            continue
        held += 1
        fewest = fewest or layout.devices
        if best is None or summary["usd_per_task"] < best[0]:
            best = (summary["usd_per_task"], layout, task)
    return None if best is None else (best[1], best[2])


def run_answered(scenario: Scenario, spec: ModelSpec, hw: HardwareProfile, dep: Deployment, samples: int,
                 seed: int, engine: Any = None, max_devices: int = 72,
                 single_device: bool = False) -> tuple[Layout | None, TaskCost]:
    """The task on one device, or, where one device does not hold it and `single_device` is off, on the
    cheapest layout that does: (the layout, None for one device; the task as run). When nothing holds it,
    the one-device run comes back (summarize says it does not fit)."""
    task = run_task(scenario, spec, hw, dep, samples, seed, engine=engine)
    if single_device or summarize(task)["fits_memory"]:
        return None, task
    return cheapest_task_layout(scenario, spec, hw, dep, samples, seed, engine, max_devices, task) or (None, task)
