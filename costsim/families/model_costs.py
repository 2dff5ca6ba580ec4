"""Whole-model parameters, cache, and per-step costs: the sum over layers of each family's terms.

Identical layers are grouped and computed once, so a 94-layer model costs a handful of numpy
calls whatever the size of the context/batch arrays.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from costsim.families import ffn as ffn_family
from costsim.families import mixer_params, module_for
from costsim.families.cost import ArrayLike, Cost, as_array, gemm_cost
from costsim.spec.dtypes import Precision
from costsim.spec.model import ModelSpec

DEFAULT_PRECISION = Precision()


@dataclass(frozen=True)
class ParamCounts:
    total: int
    active: int
    embedding: int  # input embedding plus an untied LM head
    by_part: dict[str, int] = field(default_factory=dict)

    @property
    def active_without_embedding(self) -> int:
        return self.active - self.embedding


@dataclass(frozen=True)
class ModelCost:
    total: Cost
    by_kind: dict[str, Cost]


def embedding_params(spec: ModelSpec) -> int:
    per_matrix = spec.vocab_size * spec.hidden_size
    return per_matrix if spec.tie_embeddings else 2 * per_matrix


def param_counts(spec: ModelSpec) -> ParamCounts:
    """Exact parameters: total, active per token (routed experts counted top_k of E), embedding and LM
    head, and by part (mixer family, ffn, norms, embedding). Cached per model."""
    key = (id(spec.layers), spec.hidden_size, spec.vocab_size, spec.tie_embeddings, spec.final_norm_params)
    hit = _PARAM_CACHE.get(key)
    if hit is not None and hit[0] is spec.layers:
        return hit[1]
    counts = _count_params(spec)
    if len(_PARAM_CACHE) > 256:
        _PARAM_CACHE.clear()
    _PARAM_CACHE[key] = (spec.layers, counts)  # the list is held so its id cannot be reused meanwhile
    return counts


_PARAM_CACHE: dict[tuple, tuple[list, ParamCounts]] = {}


def _count_params(spec: ModelSpec) -> ParamCounts:
    d = spec.hidden_size
    by_part: Counter = Counter()
    for mixer, count in spec.mixer_groups:
        by_part[mixer.family] += count * mixer_params(mixer, d)
    ffn_total = ffn_active = 0
    for block, count in spec.ffn_groups:
        ffn_total += count * ffn_family.params(block, d)
        ffn_active += count * ffn_family.active_params(block, d)
    by_part["ffn"] = ffn_total
    by_part["norms"] = sum(layer.norm_params for layer in spec.layers) + spec.final_norm_params
    emb = embedding_params(spec)
    by_part["embedding"] = emb
    total = sum(by_part.values())
    active = total - ffn_total + ffn_active
    return ParamCounts(total=total, active=active, embedding=emb, by_part=dict(by_part))


def cache_bytes_by_kind(spec: ModelSpec, t: ArrayLike, p: Precision = DEFAULT_PRECISION) -> dict[str, np.ndarray]:
    """Bytes per sequence at context t, keyed by the mixer family that holds them."""
    t = as_array(t)
    out: dict[str, np.ndarray] = {}
    for mixer, count in spec.mixer_groups:
        parts = module_for(mixer).cache_bytes(mixer, t, p)
        out[mixer.family] = out.get(mixer.family, 0.0) + count * sum(parts.values())
    return out


def cache_bytes_by_component(spec: ModelSpec, t: ArrayLike, p: Precision = DEFAULT_PRECISION) -> dict[str, np.ndarray]:
    """Bytes per sequence at context t, keyed by what is stored: kv, latent, indexer, state, conv..."""
    t = as_array(t)
    out: dict[str, np.ndarray] = {}
    for mixer, count in spec.mixer_groups:
        for name, value in module_for(mixer).cache_bytes(mixer, t, p).items():
            out[name] = out.get(name, 0.0) + count * value
    return out


def cache_bytes(spec: ModelSpec, t: ArrayLike, p: Precision = DEFAULT_PRECISION) -> np.ndarray:
    """Bytes one sequence holds at context t (vectorised): KV / latent caches, full windows and
    recurrent / conv state, in the precision's cache and state dtypes."""
    t = as_array(t)
    return sum(cache_bytes_by_kind(spec, t, p).values(), np.zeros_like(t))


def _sum_kinds(by_kind: dict[str, Cost]) -> Cost:
    acc = Cost.zero()
    for c in by_kind.values():
        acc = acc + c
    return acc


def _add(by_kind: dict[str, Cost], kind: str, cost: Cost) -> None:
    by_kind[kind] = by_kind[kind] + cost if kind in by_kind else cost


def _ffn_and_head(spec: ModelSpec, tokens: np.ndarray, logits_rows: np.ndarray, p: Precision,
                  by_kind: dict[str, Cost]) -> None:
    d = spec.hidden_size
    for block, count in spec.ffn_groups:
        _add(by_kind, "ffn", ffn_family.cost(block, d, tokens, p).scaled(count))
    embed_rows = np.minimum(tokens, spec.vocab_size)
    _add(by_kind, "embedding", Cost.of(bytes_weights=embed_rows * d * p.weight_bytes))
    _add(by_kind, "lm_head", gemm_cost(logits_rows, [(d, spec.vocab_size)], p.weight_bytes, p.act_bytes))


def prefill_cost(
    spec: ModelSpec,
    n: ArrayLike,
    c: ArrayLike = 0,
    batch: ArrayLike = 1,
    p: Precision = DEFAULT_PRECISION,
) -> ModelCost:
    """`n` new prompt tokens on top of `c` cached ones, for `batch` sequences, as one forward step.
    Only each sequence's last token goes through the LM head."""
    n, c, batch = as_array(n), as_array(c), as_array(batch)
    d = spec.hidden_size
    by_kind: dict[str, Cost] = {}
    for mixer, count in spec.mixer_groups:
        _add(by_kind, mixer.family, module_for(mixer).prefill(mixer, d, n, c, batch, p).scaled(count))
    _ffn_and_head(spec, batch * n, np.where(n > 0, batch, 0.0), p, by_kind)
    return ModelCost(total=_sum_kinds(by_kind), by_kind=by_kind)


def decode_cost(
    spec: ModelSpec, t: ArrayLike, batch: ArrayLike = 1, p: Precision = DEFAULT_PRECISION
) -> ModelCost:
    """One decode step: each of `batch` sequences holds `t` cached tokens and produces one more."""
    t, batch = as_array(t), as_array(batch)
    d = spec.hidden_size
    by_kind: dict[str, Cost] = {}
    for mixer, count in spec.mixer_groups:
        _add(by_kind, mixer.family, module_for(mixer).decode(mixer, d, t, batch, p).scaled(count))
    _ffn_and_head(spec, batch * np.ones_like(t), batch * np.ones_like(t), p, by_kind)
    return ModelCost(total=_sum_kinds(by_kind), by_kind=by_kind)


def routed_expert_params(spec: ModelSpec) -> int:
    """Parameters of the routed experts (every expert, touched or not): the part `Precision.experts` stores."""
    d = spec.hidden_size
    return sum(count * block.num_experts * ffn_family.expert_params(block, d)
               for block, count in spec.ffn_groups if isinstance(block, ffn_family.MoEFFN))


def weight_bytes(spec: ModelSpec, p: Precision = DEFAULT_PRECISION, params: float | None = None) -> float:
    """Bytes of every weight (or of `params` of them that include all the routed experts, as a pipeline
    stage's do): the routed experts at `p.experts` where it is set, the rest at `p.weights`."""
    total = param_counts(spec).total if params is None else params
    if p.experts is None:
        return total * p.weight_bytes
    routed = routed_expert_params(spec)
    return (total - routed) * p.weight_bytes + routed * p.expert_weight_bytes
