"""An agent task one device cannot hold, answered on the cheapest layout that holds it.

The search ranks layouts with a few samples of the task's token counts (the peak cache is the maximum over
samples, so a short run can only under-estimate it) and confirms the pick with the full run, moving to the
next cheapest when the full run does not fit. Only layouts of up to four times the fewest devices that hold
the task are ranked: a task runs one conversation at a time, so more devices shorten it but rarely cost less.
"""

from __future__ import annotations

from typing import Any

from costsim.engine.parallel import enumerate_layouts
from costsim.scenario.engine import TaskCost, run_task, summarize
from costsim.spec.deployment import Deployment
from costsim.spec.hardware import HardwareProfile
from costsim.spec.layout import Layout
from costsim.spec.model import ModelSpec
from costsim.spec.scenario import Scenario

RANKING_SAMPLES = 32
RANKED_LAYOUTS = 48


def cheapest_task_layout(scenario: Scenario, spec: ModelSpec, hw: HardwareProfile, dep: Deployment,
                         samples: int, seed: int, engine: Any = None,
                         max_devices: int = 72) -> tuple[Layout, TaskCost] | None:
    """(layout, the full task run on it) for the cheapest layout that holds the task, or None."""
    from costsim.errors import CostsimError

    ranked: list[tuple[float, int, Layout]] = []
    fewest = None
    for layout in sorted(enumerate_layouts(spec, hw, max_devices), key=lambda lay: lay.devices):
        if layout.devices < 2:
            continue
        if fewest is not None and (layout.devices > 4 * fewest or len(ranked) >= RANKED_LAYOUTS):
            break
        try:
            quick = summarize(run_task(scenario, spec, hw, dep, min(samples, RANKING_SAMPLES), seed,
                                       layout=layout, engine=engine))
        except CostsimError:
            continue  # a layout this model's shapes do not divide into
        if quick["fits_memory"]:
            fewest = fewest or layout.devices
            ranked.append((quick["usd_per_task"], layout.devices, layout))
    for _, _, layout in sorted(ranked, key=lambda x: (x[0], x[1])):
        task = run_task(scenario, spec, hw, dep, samples, seed, layout=layout, engine=engine)
        if summarize(task)["fits_memory"]:
            return layout, task
    return None
