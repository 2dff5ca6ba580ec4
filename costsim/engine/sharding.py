"""A parallel layout applied to a model: the per-device model (heads and FFN widths over tp, KV heads over
tp where they divide, MLA's latent replicated, experts over ep, the vocabulary over tp), its pipeline
stages (every distinct contiguous block of ceil(layers / pp) layers), and the collectives one stage runs
per step (the terms of engine/comm.py). serving/layouts.py times a replica built from these."""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

import numpy as np

from costsim.engine import comm
from costsim.errors import CostsimError
from costsim.families import model_costs as mc
from costsim.spec.dtypes import Precision
from costsim.spec.hardware import HardwareProfile
from costsim.spec.layout import Layout
from costsim.spec.model import Layer, ModelSpec, MoEFFN

SOFTMAX = ("dense", "sliding", "chunked", "nsa", "mla", "dsa")


def _divide(what: str, value: int, by: int, fix: str) -> int:
    if value % by:
        raise CostsimError(f"layout: {what} ({value}) is not divisible by {by}; {fix}")
    return value // by


def _shard_mixer(m: Any, tp: int) -> Any:
    if tp == 1:
        return m
    fix = f"choose tp among the divisors of {{}} (e.g. tp={math.gcd(tp, 8)})"
    if m.family in ("dense", "sliding", "chunked", "nsa"):
        heads = _divide("attention heads", m.num_heads, tp, fix.format(m.num_heads))
        kv = m.num_kv_heads
        if kv % tp == 0:
            kv //= tp
        elif tp % kv == 0:
            kv = 1  # replicated: each device keeps the KV head its query heads use
        else:
            raise CostsimError(f"layout: {kv} KV heads cannot be split or replicated over tp={tp}; "
                               f"use a tp that divides or is a multiple of {kv}")
        return m.model_copy(update={"num_heads": heads, "num_kv_heads": kv})
    if m.family in ("mla", "dsa"):
        return m.model_copy(update={"num_heads": _divide("attention heads", m.num_heads, tp,
                                                         fix.format(m.num_heads))})
    if m.family == "gated_delta":
        return m.model_copy(update={
            "num_k_heads": _divide("delta-rule key heads", m.num_k_heads, tp, fix.format(m.num_k_heads)),
            "num_v_heads": _divide("delta-rule value heads", m.num_v_heads, tp, fix.format(m.num_v_heads))})
    if m.family == "linear":
        return m.model_copy(update={"num_heads": _divide("linear-attention heads", m.num_heads, tp,
                                                         fix.format(m.num_heads))})
    if m.family == "mamba2":
        groups = m.n_groups // tp if m.n_groups % tp == 0 else 1
        return m.model_copy(update={"num_heads": _divide("Mamba2 heads", m.num_heads, tp, fix.format(m.num_heads)),
                                    "n_groups": groups})
    return m.model_copy(update={"d_inner": _divide("Mamba inner width", m.d_inner, tp, fix.format(m.d_inner))})


def _shard_ffn(f: Any, tp: int, ep: int) -> Any:
    if f is None or (tp == 1 and ep == 1):
        return f
    if isinstance(f, MoEFFN):
        update: dict[str, int] = {}
        if ep > 1:
            update["num_experts"] = _divide("experts", f.num_experts, ep, "choose ep among the divisors of the "
                                            f"expert count {f.num_experts}")
            # each device computes, on average, top_k / ep of every token's experts (rounded up)
            update["top_k"] = max(1, math.ceil(f.top_k / ep))
        elif tp > 1:
            update["expert_intermediate_size"] = _divide("expert width", f.expert_intermediate_size, tp,
                                                         "use ep (expert parallel) or a smaller tp")
        if f.shared_intermediate_size and tp > 1:
            update["shared_intermediate_size"] = max(1, f.shared_intermediate_size // tp)
        return f.model_copy(update=update)
    return f.model_copy(update={"intermediate_size": _divide("FFN width", f.intermediate_size, tp,
                                                             "choose a tp that divides it")})


def check_layout(spec: ModelSpec, hw: HardwareProfile, layout: Layout) -> None:
    """Reject layouts no serving system would run, with the reason and the fix."""
    if layout.tp > hw.scale_up_domain:
        raise CostsimError(f"layout: tp={layout.tp} exceeds the {hw.scale_up_domain}-device scale-up domain of "
                           f"{hw.name}; tensor parallelism needs it (use pp or cp across domains)")
    if layout.devices_per_replica > hw.scale_up_domain and hw.scale_out_gb_s <= 0:
        # cp and pp traffic of a replica wider than one host would go over a network the profile lacks
        raise CostsimError(f"layout: {layout.label()} spans {layout.devices_per_replica} devices and "
                           f"{comm.no_scale_out(hw)}; keep tp x cp x pp within {hw.scale_up_domain} "
                           "(add replicas with dp, which do not communicate)")
    if layout.pp > spec.num_layers:
        raise CostsimError(f"layout: pp={layout.pp} exceeds the model's {spec.num_layers} layers")
    moe = [f for f, _ in spec.ffn_groups if isinstance(f, MoEFFN)]
    if layout.ep > 1 and not moe:
        raise CostsimError(f"layout: ep={layout.ep} needs a mixture-of-experts model; {spec.name} has none")
    if layout.ep > 1 and (layout.tp * layout.cp) % layout.ep:
        raise CostsimError(f"layout: ep={layout.ep} must divide the tp x cp = {layout.tp * layout.cp} devices "
                           "of a pipeline stage")
    if layout.ep > hw.scale_up_domain:
        raise CostsimError(f"layout: ep={layout.ep} exceeds the {hw.scale_up_domain}-device scale-up domain of "
                           f"{hw.name}")


def pipeline_stages(spec: ModelSpec, pp: int) -> tuple[list[list[Layer]], list[int]]:
    """The distinct pipeline stages (contiguous blocks of ceil(layers / pp) layers, one per composition:
    a hybrid's GGG block and its GGA block time differently; identical blocks are kept once), and for
    each stage in pipeline order the index of the distinct block it runs."""
    if pp == 1:
        return [spec.layers], [0]
    size = math.ceil(spec.num_layers / pp)
    seen: dict[frozenset, int] = {}
    blocks: list[list[Layer]] = []
    order: list[int] = []
    for start in range(0, spec.num_layers, size):
        block = spec.layers[start:start + size]
        # equal layers (frozen, hashable specs) compare equal even where they are distinct objects
        key = frozenset(Counter((lay.mixer, lay.ffn, lay.norm_params) for lay in block).items())
        if key not in seen:
            seen[key] = len(blocks)
            blocks.append(block)
        order.append(seen[key])
    return blocks, order


def stage_weight_bytes(stages: list[ModelSpec], order: list[int], p: Precision) -> list[float]:
    """Weights on one device of each pipeline stage, in pipeline order. The token embedding lives on the
    first stage, the final norm and the LM head on the last (with tied embeddings each end holds its own
    copy of the matrix once pp > 1, as Megatron-style pipelines do); a single stage holds everything."""
    if len(order) == 1:
        return [mc.weight_bytes(stages[0], p)]
    out = []
    last = len(order) - 1
    for position, index in enumerate(order):
        st = stages[index]
        counts = mc.param_counts(st)
        matrix = st.vocab_size * st.hidden_size  # one vocabulary matrix, already divided by tp
        params = counts.total - counts.embedding - st.final_norm_params
        params += matrix * ((position == 0) + (position == last)) + st.final_norm_params * (position == last)
        out.append(mc.weight_bytes(st, p, params))
    return out


def shard_model(spec: ModelSpec, layout: Layout, layers: list[Layer] | None = None) -> ModelSpec:
    """The model one device of a pipeline stage runs (by default the stage with the most parameters)."""
    if layers is None:
        layers = max(pipeline_stages(spec, layout.pp)[0],
                     key=lambda block: mc.param_counts(spec.model_copy(update={"layers": block})).total)
    done: dict[tuple, Layer] = {}  # equal layers shard once (94-layer models, 300 layouts)
    sharded = []
    for lay in layers:
        key = lay.mixer, lay.ffn, lay.norm_params
        if key not in done:
            done[key] = Layer(mixer=_shard_mixer(lay.mixer, layout.tp) if lay.mixer else None,
                              ffn=_shard_ffn(lay.ffn, layout.tp, layout.ep), norm_params=lay.norm_params)
        sharded.append(done[key])
    return spec.model_copy(update={"layers": sharded, "vocab_size": math.ceil(spec.vocab_size / layout.tp),
                                   "name": f"{spec.name}[{layout.label()}]"})


def comm_per_stage(stage: ModelSpec, hw: HardwareProfile, layout: Layout, tokens: np.ndarray,
                    act_bytes: float, phase: str) -> np.ndarray:
    """Collectives of one pipeline stage for `tokens` tokens per device."""
    d = stage.hidden_size
    hidden = tokens * d * act_bytes
    total = np.zeros_like(hidden, dtype=np.float64)
    for mixer, count in stage.mixer_groups:
        total = total + count * comm.all_reduce(hw, layout.tp, hidden)
        if layout.cp > 1 and phase == "decode" and mixer.family in SOFTMAX:
            heads = getattr(mixer, "num_heads", 1)
            width = getattr(mixer, "head_dim", getattr(mixer, "kv_lora_rank", 128))
            partial = tokens * heads * (width + 2) * 4.0  # fp32 partial output, max and sum per head
            total = total + count * comm.all_gather(hw, layout.cp, partial * layout.cp, span=layout.tp * layout.cp)
    for ffn, count in stage.ffn_groups:
        if isinstance(ffn, MoEFFN) and layout.ep > 1:
            routed = hidden * ffn.top_k * layout.ep  # per-device rows of every token's experts
            total = total + count * 2 * comm.all_to_all(hw, layout.ep, routed, span=layout.tp * layout.cp)
        else:
            total = total + count * comm.all_reduce(hw, layout.tp, hidden)
    return total


def ring_bytes(stage: ModelSpec, n_local: np.ndarray, p: Any) -> np.ndarray:
    """KV bytes one cp rank passes around the ring in prefill: its chunk to every other rank."""
    per_token = mc.cache_bytes(stage, np.asarray(1.0), p) - mc.cache_bytes(stage, np.asarray(0.0), p)
    return n_local * per_token
