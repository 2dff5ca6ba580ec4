"""The public Python API: the same things the CLI does, as functions returning plain data."""

from __future__ import annotations

from typing import Any

from costsim import model_costs
from costsim.inspection import inspect_model
from costsim.loader import load_model, presets


def list_models() -> list[dict[str, Any]]:
    rows = []
    for preset in presets():
        spec = load_model(preset.name)
        counts = model_costs.param_counts(spec)
        rows.append({
            "name": preset.name,
            "num_layers": spec.num_layers,
            "layer_mix": spec.layer_mix(),
            "params_total": counts.total,
            "params_active": counts.active,
            "file": preset.path.name,
        })
    return rows


__all__ = ["inspect_model", "list_models", "load_model"]
