"""`costsim inspect`: what a model costs per token and per sequence, before any hardware."""

from __future__ import annotations

from typing import Any

import numpy as np

from costsim.families import model_costs as mc
from costsim.spec.dtypes import Precision
from costsim.spec.model import ModelSpec

# Far beyond any window, chunk or compression block, and a multiple of every stride we use, so
# the difference below isolates the bytes that grow with every token.
_LARGE_T = float(2**30)


def growing_cache_bytes_per_token(spec: ModelSpec, p: Precision) -> float:
    """Bytes the cache gains per extra token once every window is full (full-attention layers only)."""
    return float((mc.cache_bytes(spec, 2 * _LARGE_T, p) - mc.cache_bytes(spec, _LARGE_T, p)) / _LARGE_T)


def fixed_cache_bytes(spec: ModelSpec, p: Precision) -> float:
    """Bytes that stop growing: full windows/chunks plus recurrent and conv state."""
    return float(mc.cache_bytes(spec, _LARGE_T, p) - growing_cache_bytes_per_token(spec, p) * _LARGE_T)


def _f(x: Any) -> float:
    return float(np.asarray(x))


def inspect_model(spec: ModelSpec, context: int, p: Precision | None = None, batch: int = 1) -> dict[str, Any]:
    """What `costsim inspect` prints: parameters, cache per token and per sequence (by layer kind and
    component), prefill FLOPs, decode FLOPs and bytes per step at `batch`."""
    p = p or Precision()
    counts = mc.param_counts(spec)
    prefill = mc.prefill_cost(spec, context, 0, 1, p)
    decode_one = mc.decode_cost(spec, context, 1, p)
    decode_batch = decode_one if batch == 1 else mc.decode_cost(spec, context, batch, p)
    by_kind = {k: _f(v) for k, v in mc.cache_bytes_by_kind(spec, context, p).items()}
    return {
        "model": spec.name,
        "context_tokens": context,
        "batch": batch,
        "precision": p.model_dump(),
        "num_layers": spec.num_layers,
        "layer_pattern": spec.layer_pattern(),
        "layer_mix": spec.layer_mix(),
        "params_total": counts.total,
        "params_active": counts.active,
        "params_embedding": counts.embedding,
        "params_active_without_embedding": counts.active_without_embedding,
        "params_by_part": counts.by_part,
        "weight_bytes": mc.weight_bytes(spec, p),
        "cache_bytes_per_token": growing_cache_bytes_per_token(spec, p),
        "cache_bytes_fixed": fixed_cache_bytes(spec, p),
        "cache_bytes_per_sequence": sum(by_kind.values()),
        "cache_bytes_by_kind": by_kind,
        "cache_bytes_by_component": {k: _f(v) for k, v in mc.cache_bytes_by_component(spec, context, p).items()},
        "prefill_flops": _f(prefill.total.flops),
        "prefill_flops_matrix": _f(prefill.total.flops_matrix),
        "prefill_flops_by_kind": {k: _f(v.flops) for k, v in prefill.by_kind.items()},
        "decode_flops_per_token": _f(decode_one.total.flops),
        "decode_flops_matrix_per_token": _f(decode_one.total.flops_matrix),
        "decode_bytes_per_step": _f(decode_batch.total.bytes_total),
        "decode_bytes_by_type": {k.removeprefix("bytes_"): _f(v) for k, v in decode_batch.total.as_dict().items()
                                 if k.startswith("bytes_")},
        "decode_arithmetic_intensity": _f(decode_batch.total.flops / decode_batch.total.bytes_total),
        "source": spec.source,
    }
