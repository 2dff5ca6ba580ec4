"""One model replica over several devices: per-device model, memory, step times with communication,
and the search over layouts behind `costsim plan` (docs/deployments.md).

Per device, a layout runs the heaviest pipeline stage of a *sharded* model: the contiguous block
of ceil(layers / pp) layers with the most parameters, heads and FFN widths divided by tp, KV heads by
tp where they divide (replicated beyond: GQA with 8 KV heads at tp=16 keeps one per device), MLA's
latent replicated over tp (it has one head), experts divided by ep, the vocabulary by tp, and the
context by cp. The single-device engine then times that model, and the collectives of
`engine/comm.py` are added:

    decode (microbatch m = batch / pp in flight per stage):
        TPOT = pp x stage(m) - (pp - 1) x lm_head + pp x comm_stage(m) + (pp - 1) x p2p(m d)
        comm_stage: 2 all-reduces of m x d per layer over tp (MoE with ep > 1: one all-reduce and an
        all-to-all dispatch + combine of m x top_k x d over ep); with cp, an all-gather of the partial
        attention outputs per softmax layer
    prefill of a prompt of n tokens (batch 1): each cp rank takes n / cp queries against the keys
        before them (load-balanced ring: n^2 / (2 cp) pairs each), the KV ring traffic overlapped with
        attention compute unless `overlap=False`; the same tp / ep terms with n / cp tokens; with pp the
        prefill chunks pipeline through the stages: TTFT = stage x (chunks + pp - 1) / chunks.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from costsim import model_costs as mc
from costsim.engine import comm
from costsim.engine.timing import decode_step_time, prefill_time
from costsim.errors import CostsimError
from costsim.spec.deployment import Deployment
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


_LAYER_PARAMS: dict[int, tuple[ModelSpec, list[float]]] = {}


def _layer_params(spec: ModelSpec) -> list[float]:
    """Parameters of each layer (cached per model object): what decides the heaviest stage."""
    cached = _LAYER_PARAMS.get(id(spec))
    if cached is None or cached[0] is not spec:
        one: dict[tuple[int, int], float] = {}
        for layer in spec.layers:
            key = id(layer.mixer), id(layer.ffn)
            if key not in one:
                counts = mc.param_counts(spec.model_copy(update={"layers": [layer]}))
                one[key] = float(counts.total - counts.embedding)  # the layer's own weights
        cached = (spec, [one[id(lay.mixer), id(lay.ffn)] for lay in spec.layers])
        _LAYER_PARAMS[id(spec)] = cached
    return cached[1]


def stage_layers(spec: ModelSpec, pp: int) -> list[Layer]:
    """The heaviest of pp contiguous stages of ceil(layers / pp) layers (DeepSeek's MoE layers, not
    its three dense ones; a hybrid keeps the mix of the block it gets)."""
    if pp == 1:
        return spec.layers
    size = math.ceil(spec.num_layers / pp)
    params = np.asarray(_layer_params(spec))
    starts = range(0, spec.num_layers, size)
    start = max(starts, key=lambda i: params[i:i + size].sum())
    return spec.layers[start:start + size]


def shard_model(spec: ModelSpec, layout: Layout) -> ModelSpec:
    """The model one device of the heaviest pipeline stage runs (see the module docstring)."""
    layers = stage_layers(spec, layout.pp)
    done: dict[tuple[int, int, int], Layer] = {}  # identical layers shard once (94-layer models, 300 layouts)
    sharded = []
    for lay in layers:
        key = id(lay.mixer), id(lay.ffn), lay.norm_params
        if key not in done:
            done[key] = Layer(mixer=_shard_mixer(lay.mixer, layout.tp) if lay.mixer else None,
                              ffn=_shard_ffn(lay.ffn, layout.tp, layout.ep), norm_params=lay.norm_params)
        sharded.append(done[key])
    return spec.model_copy(update={"layers": sharded, "vocab_size": math.ceil(spec.vocab_size / layout.tp),
                                   "name": f"{spec.name}[{layout.label()}]"})


def _comm_per_stage(stage: ModelSpec, hw: HardwareProfile, layout: Layout, tokens: np.ndarray,
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


def _ring_bytes(stage: ModelSpec, n_local: np.ndarray, p: Any) -> np.ndarray:
    """KV bytes one cp rank passes around the ring in prefill: its chunk to every other rank."""
    per_token = mc.cache_bytes(stage, np.asarray(1.0), p) - mc.cache_bytes(stage, np.asarray(0.0), p)
    return n_local * per_token


def evaluate_layout(spec: ModelSpec, hw: HardwareProfile, dep: Deployment, layout: Layout, context: int,
                    batch: int | None = None, tpot_target_s: float | None = None,
                    overlap: bool = True) -> dict[str, Any]:
    """Memory fit, max batch, TPOT, TTFT, throughput and $/Mtok of one layout at one context."""
    check_layout(spec, hw, layout)
    stage = shard_model(spec, layout)
    p = dep.precision
    t_local = context / layout.cp
    weights = mc.param_counts(stage).total * p.weight_bytes
    per_seq = float(mc.cache_bytes(stage, np.asarray(float(t_local)), p))
    usable = hw.memory_bytes * (1.0 - dep.memory_reserve_fraction) - weights
    fit = int(max(usable, 0.0) // max(per_seq, 1.0)) if usable > 0 else 0
    out: dict[str, Any] = {"devices": layout.devices_per_replica * layout.dp, "layout": layout.as_dict(),
                           "label": layout.label(), "weight_bytes_per_device": weights,
                           "cache_bytes_per_sequence_per_device": per_seq, "max_batch": fit,
                           "fits_memory": fit >= 1}
    if fit < 1:
        out["reason"] = (f"does not fit: {weights / 1e9:.1f} GB of weights + {per_seq / 1e9:.2f} GB of cache per "
                         f"sequence per device exceed {hw.memory_bytes * (1 - dep.memory_reserve_fraction) / 1e9:.1f}"
                         " GB usable")
        return out

    def comm_of(b: np.ndarray) -> np.ndarray:
        micro = np.maximum(b / layout.pp, 1.0)
        p2p = comm.point_to_point(hw, micro * spec.hidden_size * p.act_bytes, span=layout.devices_per_replica)
        return (layout.pp * _comm_per_stage(stage, hw, layout, micro, p.act_bytes, "decode")
                + (layout.pp - 1) * (p2p if layout.pp > 1 else 0.0))

    def tpot_of(b: np.ndarray) -> np.ndarray:
        micro = np.maximum(b / layout.pp, 1.0)
        step = decode_step_time(stage, hw, t_local, micro, p, dep.cuda_graphs)
        return layout.pp * step.total_s - (layout.pp - 1) * step.by_class["lm_head"] + comm_of(b)

    candidates = np.unique(np.round(np.geomspace(1, fit, num=min(fit, 256)))) if batch is None else \
        np.asarray([float(batch)])
    tpots = tpot_of(candidates)
    if batch is None and tpot_target_s is not None:
        ok = tpots <= tpot_target_s
        if not ok.any():
            out.update(fits_memory=True, meets_latency=False, tpot_s=float(tpots[0]),
                       reason=f"misses the TPOT target: {tpots[0] * 1e3:.1f} ms at batch 1 > "
                              f"{tpot_target_s * 1e3:.1f} ms")
            return out
        idx = int(np.nonzero(ok)[0].max())
    else:
        idx = len(candidates) - 1
    b, tpot = float(candidates[idx]), float(tpots[idx])

    n_local = t_local
    cached = context * (layout.cp - 1) / (2.0 * layout.cp)  # load-balanced ring: n^2 / (2 cp) pairs per rank
    pre = prefill_time(stage, hw, n_local, cached, 1, p, dep.prefill_chunk_tokens)
    comm_pre = _comm_per_stage(stage, hw, layout, np.asarray(n_local), p.act_bytes, "prefill")
    ring = np.zeros(())
    if layout.cp > 1:
        ring_total = (layout.cp - 1) * comm.point_to_point(hw, _ring_bytes(stage, np.asarray(n_local), p),
                                                           span=layout.tp * layout.cp)
        attention = pre.by_class.get("attention_prefill", 0.0)
        ring = np.maximum(ring_total - attention, 0.0) if overlap else ring_total
    # chunked prefill pipelines through the stages: chunk i runs on stage j while chunk i+1 runs on j-1
    chunks = max(math.ceil(n_local / dep.prefill_chunk_tokens), 1)
    stage_prefill = pre.total_s + comm_pre + ring - (pre.by_class["lm_head"] if layout.pp > 1 else 0.0)
    p2p_pre = comm.point_to_point(hw, min(n_local, dep.prefill_chunk_tokens) * spec.hidden_size * p.act_bytes,
                                  span=layout.devices_per_replica)
    ttft = float(stage_prefill * (chunks + layout.pp - 1) / chunks + (layout.pp - 1) * p2p_pre
                 + (pre.by_class["lm_head"] if layout.pp > 1 else 0.0))

    devices = layout.devices_per_replica
    usd_s = devices * hw.usd_per_hour / 3600.0 / dep.utilisation
    decode_tps = b / tpot
    out.update(batch=int(b), tpot_s=tpot, tpot_batch1_s=float(tpot_of(np.asarray([1.0]))[0]), ttft_s=ttft,
               decode_tokens_per_s=decode_tps * layout.dp,
               prefill_tokens_per_s=context / ttft * layout.dp, meets_latency=True,
               usd_per_mtok_output=usd_s / decode_tps * 1e6, usd_per_mtok_input=usd_s * ttft / context * 1e6,
               comm_share_of_tpot=float(comm_of(np.asarray([b]))[0] / tpot))
    return out


def _powers_of_two(limit: int) -> list[int]:
    return [2**i for i in range(int(math.log2(max(limit, 1))) + 1)]


def enumerate_layouts(spec: ModelSpec, hw: HardwareProfile, max_devices: int) -> list[Layout]:
    moe = any(isinstance(f, MoEFFN) for f, _ in spec.ffn_groups)
    layouts = []
    for tp in _powers_of_two(min(max_devices, hw.scale_up_domain)):
        for cp in _powers_of_two(max_devices // tp):
            room = min(max_devices // (tp * cp), spec.num_layers)
            # every stage count up to 16 (a model that needs 10 devices gets 10), powers of two beyond
            for pp in sorted(set(range(1, min(room, 16) + 1)) | set(_powers_of_two(room))):
                for ep in sorted({1, tp * cp} if moe and tp * cp <= hw.scale_up_domain else {1}):
                    layouts.append(Layout(tp=tp, cp=cp, pp=pp, ep=ep))
    return layouts


def plan(spec: ModelSpec, hw: HardwareProfile, dep: Deployment, context: int, tpot_target_s: float | None = None,
         ttft_target_s: float | None = None, max_devices: int = 72, overlap: bool = True) -> dict[str, Any]:
    """Every layout up to `max_devices`: the cheapest per output Mtok ("chosen"), the fastest and the
    one with the fewest devices among those that fit and meet the targets, and each rejected layout
    with its reason."""
    feasible, rejected = [], []
    for layout in enumerate_layouts(spec, hw, max_devices):
        try:
            r = evaluate_layout(spec, hw, dep, layout, context, None, tpot_target_s, overlap)
        except CostsimError as exc:
            rejected.append({"layout": layout.as_dict(), "label": layout.label(), "devices": layout.devices,
                             "reason": str(exc).removeprefix("layout: ")})
            continue
        if "reason" not in r and ttft_target_s is not None and r["ttft_s"] > ttft_target_s:
            r["reason"] = f"misses the TTFT target: {r['ttft_s']:.2f} s > {ttft_target_s:.2f} s"
        (rejected if "reason" in r else feasible).append(r)
    result: dict[str, Any] = {"model": spec.name, "hardware": hw.name, "context_tokens": context,
                              "max_devices": max_devices, "feasible": sorted(feasible,
                                                                             key=lambda r: r["usd_per_mtok_output"]),
                              "rejected": rejected}
    if feasible:
        result["chosen"] = min(feasible, key=lambda r: (r["usd_per_mtok_output"], r["devices"]))
        # the lowest latency a user can get: one sequence per replica
        result["fastest"] = min(feasible, key=lambda r: (r["tpot_batch1_s"], r["devices"]))
        result["fewest_devices"] = min(feasible, key=lambda r: (r["devices"], r["usd_per_mtok_output"]))
    else:
        fits = [r for r in rejected if r.get("fits_memory")]
        why = ("no layout up to that many devices holds the weights and one sequence's cache" if not fits
               else "layouts that fit miss the latency targets")
        result["none_because"] = why
    return result
