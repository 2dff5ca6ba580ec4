"""One module per attention family, each with the same entry points:

- ``weight_matrices(mixer, d)`` and ``extra_params(mixer, d)``: the layer's weights;
- ``cache_bytes(mixer, t, precision)``: bytes per sequence at context t, by component;
- ``prefill(mixer, d, n, c, batch, precision)``: n new tokens after c cached, for batch sequences;
- ``decode(mixer, d, t, batch, precision)``: one new token per sequence at context t.

Every function takes numpy arrays and broadcasts.
"""

from __future__ import annotations

from types import ModuleType

from costsim.families import delta, dense, linear, mla, sparse, ssm
from costsim.families.cost import matrix_params

FAMILY_MODULES: dict[str, ModuleType] = {
    "dense": dense,
    "sliding": dense,
    "chunked": dense,
    "mla": mla,
    "dsa": mla,
    "nsa": sparse,
    "linear": linear,
    "gated_delta": delta,
    "mamba2": ssm,
    "mamba": ssm,
}


def module_for(mixer) -> ModuleType:
    return FAMILY_MODULES[mixer.family]


def mixer_params(mixer, d: int) -> int:
    mod = module_for(mixer)
    return matrix_params(mod.weight_matrices(mixer, d)) + mod.extra_params(mixer, d)


def projection_matrices(mixer, d: int):
    """Weight matrices applied as plain GEMMs to each new token (the rest is the mixer's core)."""
    mod = module_for(mixer)
    return getattr(mod, "projection_matrices", mod.weight_matrices)(mixer, d)
