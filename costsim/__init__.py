"""costsim: analytic cost simulator for long-context LLM inference.

Quick start::

    import costsim
    spec = costsim.load_model("deepseek-v3")
    costsim.cache_bytes(spec, [1024, 131072, 1_000_000])     # bytes per sequence, vectorised
    costsim.inspect_model(spec, 131072)                        # the dict `costsim inspect` prints
    costsim.estimate("qwen3-next-80b-a3b", "h200", context="256k")
    costsim.sweep(["llama-3.1-8b"], ["h100-sxm", "h200"], contexts).columns()

Names are imported on first use, so `costsim --help` does not pay for numpy and pydantic.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "CostsimError": "costsim.errors",
    "ModelCost": "costsim.families.model_costs",
    "ParamCounts": "costsim.families.model_costs",
    "cache_bytes": "costsim.families.model_costs",
    "cache_bytes_by_component": "costsim.families.model_costs",
    "cache_bytes_by_kind": "costsim.families.model_costs",
    "decode_cost": "costsim.families.model_costs",
    "decode_step_time": "costsim.engine.timing",
    "prefill_time": "costsim.engine.timing",
    "StepTime": "costsim.engine.timing",
    "param_counts": "costsim.families.model_costs",
    "prefill_cost": "costsim.families.model_costs",
    "estimate": "costsim.api",
    "inspect_model": "costsim.api",
    "list_hardware": "costsim.api",
    "list_models": "costsim.api",
    "load_model": "costsim.api",
    "load_hardware": "costsim.inputs.hardware",
    "compare": "costsim.analysis.sweeps",
    "sweep": "costsim.analysis.sweeps",
    "plan": "costsim.api",
    "serve": "costsim.api",
    "frontier": "costsim.api",
    "estimate_layout": "costsim.api",
    "disaggregate": "costsim.api",
    "build_report": "costsim.analysis.report",
    "run_scenario": "costsim.api",
    "run_task": "costsim.analysis.task_costs",
    "summarize": "costsim.analysis.task_costs",
    "load_scenario": "costsim.inputs.scenarios",
    "Layout": "costsim.spec.layout",
    "Scenario": "costsim.spec.scenario",
    "Precision": "costsim.spec.dtypes",
    "Deployment": "costsim.spec.deployment",
    "HardwareProfile": "costsim.spec.hardware",
    "ModelSpec": "costsim.spec.model",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'costsim' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
