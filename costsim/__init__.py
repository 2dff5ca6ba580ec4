"""costsim: analytic cost simulator for long-context LLM inference.

Quick start::

    import costsim
    spec = costsim.load_model("deepseek-v3")
    costsim.cache_bytes(spec, [1024, 131072, 1_000_000])     # bytes per sequence, vectorised
    costsim.inspect_model(spec, 131072)                        # the dict `costsim inspect` prints
"""

from costsim.api import estimate, inspect_model, list_hardware, list_models, load_model
from costsim.errors import CostsimError
from costsim.model_costs import (
    ModelCost,
    ParamCounts,
    cache_bytes,
    cache_bytes_by_component,
    cache_bytes_by_kind,
    decode_cost,
    param_counts,
    prefill_cost,
)
from costsim.spec.dtypes import Precision
from costsim.spec.model import ModelSpec

__version__ = "0.1.0"

__all__ = [
    "CostsimError",
    "ModelCost",
    "ModelSpec",
    "ParamCounts",
    "Precision",
    "cache_bytes",
    "cache_bytes_by_component",
    "cache_bytes_by_kind",
    "decode_cost",
    "estimate",
    "inspect_model",
    "list_hardware",
    "list_models",
    "load_model",
    "param_counts",
    "prefill_cost",
]
