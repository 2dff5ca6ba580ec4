"""One model replica over several devices: per-device model, memory, step times with communication,
and the search over layouts behind `costsim plan` (docs/deployments.md).

Per device, a layout runs one pipeline stage of a *sharded* model (every distinct contiguous block
of ceil(layers / pp) layers is built: memory must fit on each, decode waits for the slowest), heads
and FFN widths divided by tp, KV heads by tp where they divide (replicated beyond: GQA with 8 KV
heads at tp=16 keeps one per device), MLA's latent replicated over tp (it has one head), experts
divided by ep, the vocabulary by tp, and the context by cp. The single-device engine then times that
model, and the collectives of `engine/comm.py` are added:

    decode (microbatch m = batch / pp in flight per stage):
        TPOT = pp x slowest stage(m) without the LM head + lm_head + pp x comm_stage(m) + (pp - 1) x p2p(m d)
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
from collections import Counter
from collections.abc import Callable
from typing import Any

import numpy as np

from costsim.engine import comm
from costsim.engine.timing import KernelPlan, decode_step_time, prefill_time
from costsim.errors import CostsimError
from costsim.families import model_costs as mc
from costsim.families.cost import ArrayLike
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


def stage_weight_bytes(stages: list[ModelSpec], order: list[int], weight_bytes: float) -> list[float]:
    """Weights on one device of each pipeline stage, in pipeline order. The token embedding lives on the
    first stage, the final norm and the LM head on the last (with tied embeddings each end holds its own
    copy of the matrix once pp > 1, as Megatron-style pipelines do); a single stage holds everything."""
    if len(order) == 1:
        return [mc.param_counts(stages[0]).total * weight_bytes]
    out = []
    last = len(order) - 1
    for position, index in enumerate(order):
        st = stages[index]
        counts = mc.param_counts(st)
        matrix = st.vocab_size * st.hidden_size  # one vocabulary matrix, already divided by tp
        params = counts.total - counts.embedding - st.final_norm_params
        params += matrix * ((position == 0) + (position == last)) + st.final_norm_params * (position == last)
        out.append(params * weight_bytes)
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


class _Sharded:
    """One layout of one model, ready to time at any context and batch (arrays broadcast). Every
    distinct pipeline stage is its own sharded model: memory must fit on each, a token waits for the
    slowest stage at every step (pipeline in lockstep), and the LM head runs once."""

    def __init__(self, spec: ModelSpec, hw: HardwareProfile, dep: Deployment, layout: Layout, overlap: bool,
                 plan: KernelPlan | None = None, memory_budget: Callable[[ModelSpec, float], float] | None = None,
                 engine: Any = None):
        """plan: a serving engine's kernel list (None: costsim's default); memory_budget(stage, weights): the
        bytes one device gives weights + cache under the engine's memory rule (None: capacity less the
        deployment's reserve fraction); engine: an EngineProfile that sets both, caps the batch at its
        max_num_seqs, adds its CPU time per step and its TTFT floor (plan / sweep / compare --engine)."""
        if engine is not None:
            from costsim.serving.engines import check_serves, kernel_plan
            from costsim.serving.memory import weights_and_pool_budget

            check_serves(engine, spec, hw)
            plan, memory_budget = kernel_plan(engine), weights_and_pool_budget(engine, hw, dep.precision)
            dep = dep.model_copy(update={"cuda_graphs": engine.kernels.cuda_graphs,
                                         "prefill_chunk_tokens": engine.scheduler.max_batched_tokens})
        self.engine = engine
        check_layout(spec, hw, layout)
        self.spec, self.hw, self.dep, self.layout, self.overlap = spec, hw, dep, layout, overlap
        self.plan = plan
        blocks, order = pipeline_stages(spec, layout.pp)
        self.stages = [shard_model(spec, layout, block) for block in blocks]
        self.p = dep.precision
        per_position = stage_weight_bytes(self.stages, order, self.p.weight_bytes)
        self.weights = max(per_position)
        reserve_budget = hw.memory_bytes * (1.0 - dep.memory_reserve_fraction)
        # per distinct block, the memory left on the fullest device that runs it (the first and last
        # stages also hold the embedding and the LM head)
        self.stage_usable = []
        for index in range(len(blocks)):
            heaviest = max(w for w, i in zip(per_position, order, strict=True) if i == index)
            budget = reserve_budget if memory_budget is None else memory_budget(self.stages[index], heaviest)
            self.stage_usable.append(budget - heaviest)
        self.usable = min(self.stage_usable)
        self.usd_s = layout.devices_per_replica * hw.usd_per_hour / 3600.0 / dep.utilisation

    def _local(self, context: np.ndarray) -> np.ndarray:
        return np.asarray(context, dtype=np.float64) / self.layout.cp

    def stage_cache(self, context: np.ndarray) -> list[np.ndarray]:
        return [mc.cache_bytes(st, self._local(context), self.p) for st in self.stages]

    def cache_per_sequence(self, context: np.ndarray) -> np.ndarray:
        """One sequence's cache on the device that holds the most of it."""
        return np.max(np.stack(np.broadcast_arrays(*self.stage_cache(context))), axis=0)

    def memory_share(self, context: np.ndarray) -> np.ndarray:
        """Largest share of a device's usable memory one sequence takes."""
        shares = [c / max(u, 1.0) for c, u in zip(self.stage_cache(context), self.stage_usable, strict=True)]
        return np.max(np.stack(np.broadcast_arrays(*shares)), axis=0)

    def cached_read_s(self, context: np.ndarray) -> np.ndarray:
        """Device time to read one cached token's entry at this context: it lives on one cp rank's
        shard and is read there, every rank reading its own tokens in parallel."""
        t = np.asarray(context, dtype=np.float64)
        growth = self.cache_per_sequence(t + 1.0) - self.cache_per_sequence(t)  # (t + 1) / cp local tokens
        return growth / (self.hw.bandwidth_bytes_s * self.hw.efficiency.memory_max)

    def max_batch_at(self, context: np.ndarray) -> np.ndarray:
        """Sequences whose caches fit beside the weights on every stage's devices."""
        fits = []
        for cache, usable in zip(self.stage_cache(context), self.stage_usable, strict=True):
            fits.append(np.zeros_like(cache) if usable <= 0 else np.floor(usable / np.maximum(cache, 1.0)))
        fit = np.min(np.stack(np.broadcast_arrays(*fits)), axis=0)
        return fit if self.engine is None else np.minimum(fit, float(self.engine.scheduler.max_num_seqs))

    def comm_decode(self, b: np.ndarray) -> np.ndarray:
        lay, p = self.layout, self.p
        micro = np.maximum(b / lay.pp, 1.0)
        per_stage = np.max(np.stack(np.broadcast_arrays(*[
            _comm_per_stage(st, self.hw, lay, micro, p.act_bytes, "decode") for st in self.stages])), axis=0)
        total = lay.pp * per_stage
        if lay.pp > 1:
            p2p = comm.point_to_point(self.hw, micro * self.spec.hidden_size * p.act_bytes,
                                      span=lay.devices_per_replica)
            total = total + (lay.pp - 1) * p2p
        return total

    def cpu_bound(self, gpu: np.ndarray, sequences: ArrayLike) -> np.ndarray:
        """A step's time with the engine's CPU time per step (step_s + per_sequence_s x sequences): after the
        GPU's, or overlapped with it (max of the two) where the engine schedules ahead; no engine: the GPU's."""
        if self.engine is None:
            return gpu
        o = self.engine.overheads
        cpu = o.step_s + o.per_sequence_s * np.asarray(sequences, dtype=np.float64)
        return np.maximum(gpu, cpu) if o.overlapped else gpu + cpu

    def tpot(self, context: np.ndarray, b: np.ndarray) -> np.ndarray:
        return self.cpu_bound(self.gpu_tpot(context, b), b)

    def gpu_tpot(self, context: np.ndarray, b: np.ndarray) -> np.ndarray:
        """One decode step of b sequences on the devices alone (no CPU time)."""
        lay = self.layout
        micro = np.maximum(b / lay.pp, 1.0)
        steps = [decode_step_time(st, self.hw, self._local(context), micro, self.p, self.dep.cuda_graphs, self.plan)
                 for st in self.stages]
        head = steps[0].by_class["lm_head"]
        slowest = np.max(np.stack(np.broadcast_arrays(*[st.total_s - st.by_class["lm_head"] for st in steps])),
                         axis=0)
        return lay.pp * slowest + head + self.comm_decode(b)

    def ttft(self, context: np.ndarray, already_cached: np.ndarray | float = 0.0, batch: float = 1.0,
             request_floor: bool = True) -> np.ndarray:
        """Prefill of `context` new tokens per sequence after `already_cached` ones (spread over cp), for
        `batch` sequences prefilled together (1: the time to first token of one request); with an engine and
        `request_floor`, what a request sees: the prefill as one engine step (its CPU time, as serve's step
        model charges it) plus the per-request TTFT floor (HTTP, tokenisation)."""
        lay, p, dep = self.layout, self.p, self.dep
        context = np.asarray(context, dtype=np.float64)
        n_local = context / lay.cp
        # load-balanced ring: each rank's n / cp queries see the whole cached prefix and, on average,
        # half of the other ranks' new keys: n^2 / (2 cp) new pairs per rank
        cached = np.asarray(already_cached, dtype=np.float64) + context * (lay.cp - 1) / (2.0 * lay.cp)
        per_stage, head = [], 0.0
        for st in self.stages:
            pre = prefill_time(st, self.hw, n_local, cached, batch, p, dep.prefill_chunk_tokens, self.plan)
            comm_pre = _comm_per_stage(st, self.hw, lay, n_local * batch, p.act_bytes, "prefill")
            ring = np.zeros_like(n_local)
            if lay.cp > 1:
                ring_total = (lay.cp - 1) * comm.point_to_point(self.hw, batch * _ring_bytes(st, n_local, p),
                                                                span=lay.tp * lay.cp)
                attention = pre.by_class.get("attention_prefill", 0.0)
                ring = np.maximum(ring_total - attention, 0.0) if self.overlap else ring_total
            head = pre.by_class["lm_head"]
            per_stage.append(pre.total_s + comm_pre + ring - head)
        slowest = np.max(np.stack(np.broadcast_arrays(*per_stage)), axis=0)
        # chunked prefill pipelines through the stages: chunk i runs on stage j while chunk i+1 runs on j-1
        chunks = np.maximum(np.ceil(n_local / dep.prefill_chunk_tokens), 1.0)
        p2p = comm.point_to_point(self.hw, np.minimum(n_local, dep.prefill_chunk_tokens) * self.spec.hidden_size
                                  * p.act_bytes, span=lay.devices_per_replica) if lay.pp > 1 else 0.0
        gpu = slowest * (chunks + lay.pp - 1) / chunks + (lay.pp - 1) * p2p + head
        if self.engine is None or not request_floor:
            return gpu
        return self.cpu_bound(gpu, np.full_like(gpu, float(batch))) + self.engine.overheads.ttft_floor_s


def evaluate_layout(spec: ModelSpec, hw: HardwareProfile, dep: Deployment, layout: Layout, context: int,
                    batch: int | None = None, tpot_target_s: float | None = None,
                    overlap: bool = True, engine: Any = None) -> dict[str, Any]:
    """Memory fit, max batch, TPOT, TTFT, throughput and $/Mtok of one layout at one context."""
    sh = _Sharded(spec, hw, dep, layout, overlap, engine=engine)
    per_seq = float(sh.cache_per_sequence(np.asarray(float(context))))
    fit = int(sh.max_batch_at(np.asarray(float(context))))
    out: dict[str, Any] = {"devices": layout.devices_per_replica * layout.dp, "layout": layout.as_dict(),
                           "label": layout.label(), "weight_bytes_per_device": sh.weights,
                           "cache_bytes_per_sequence_per_device": per_seq, "max_batch": fit,
                           "fits_memory": fit >= 1}
    if fit < 1:
        usable = (f"{hw.memory_bytes * (1 - dep.memory_reserve_fraction) / 1e9:.1f} GB usable" if engine is None
                  else f"what {engine.name}'s memory rule leaves ({max(sh.usable, 0.0) / 1e9:.2f} GB for the cache)")
        out["reason"] = (f"does not fit: {sh.weights / 1e9:.1f} GB of weights + {per_seq / 1e9:.2f} GB of cache "
                         f"per sequence per device exceed {usable}")
        return out
    if batch is not None and batch > fit:
        out.update(fits_memory=False, reason=f"does not fit: {batch:,} sequences asked, the pool holds {fit:,} "
                                             "per replica at this context; lower --batch or add devices")
        return out
    candidates = np.unique(np.round(np.geomspace(1, fit, num=min(fit, 256)))) if batch is None else \
        np.asarray([float(batch)])
    tpots = sh.tpot(np.asarray(float(context)), candidates)
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
    ttft = float(sh.ttft(np.asarray(float(context))))
    decode_tps = b / tpot
    # the batch search starts at one sequence; a given batch needs the batch-1 step timed apart
    tpot1 = float(tpots[0]) if batch is None else float(sh.tpot(np.asarray(float(context)), np.asarray([1.0]))[0])
    out.update(batch=int(b), tpot_s=tpot, tpot_batch1_s=tpot1,
               ttft_s=ttft, decode_tokens_per_s=decode_tps * layout.dp,
               prefill_tokens_per_s=context / ttft * layout.dp, meets_latency=True,
               usd_per_mtok_output=sh.usd_s / decode_tps * 1e6, usd_per_mtok_input=sh.usd_s * ttft / context * 1e6,
               usd_per_mtok_cached_input=sh.usd_s * float(sh.cached_read_s(np.asarray(float(context)))) * 1e6,
               comm_share_of_tpot=float(sh.comm_decode(np.asarray([b]))[0] / tpot))
    return out


def layout_grid(spec: ModelSpec, hw: HardwareProfile, dep: Deployment, layout: Layout, contexts: np.ndarray,
                overlap: bool = True, engine: Any = None, batch: int | None = None) -> dict[str, np.ndarray]:
    """One layout over many contexts at the largest batch that fits (the sweep's view), or at `batch`
    sequences where that many fit: arrays."""
    sh = _Sharded(spec, hw, dep, layout, overlap, engine=engine)
    t = np.asarray(contexts, dtype=np.float64)
    fit = sh.max_batch_at(t)
    b = np.maximum(fit, 1.0) if batch is None else np.full_like(t, float(batch))
    # only the contexts where it fits are timed (NaN elsewhere): a plan search over a hundred layouts at
    # contexts most of them cannot hold spends nothing on them
    runs = fit >= (1 if batch is None else batch)
    tpot, ttft, read = (np.full_like(t, np.nan) for _ in range(3))
    if runs.any():
        tpot[runs] = sh.tpot(t[runs], b[runs])
        ttft[runs] = sh.ttft(t[runs])
        read[runs] = sh.cached_read_s(t[runs])
    devices = np.full_like(t, float(layout.devices))
    return {"max_batch": fit, "batch": b, "fits_memory": runs, "tpot_s": tpot, "ttft_s": ttft,
            "decode_tokens_per_s": b / tpot * layout.dp, "prefill_tokens_per_s": t / ttft * layout.dp,
            "usd_per_mtok_output": sh.usd_s * tpot / b * 1e6, "usd_per_mtok_input": sh.usd_s * ttft / t * 1e6,
            "usd_per_mtok_cached_input": sh.usd_s * read * 1e6,
            "cache_bytes_per_sequence": mc.cache_bytes(spec, t, sh.p), "devices": devices}


def best_layout_grid(spec: ModelSpec, hw: HardwareProfile, dep: Deployment, contexts: np.ndarray,
                     max_devices: int = 72, overlap: bool = True, engine: Any = None) -> dict[str, Any]:
    """Per context, the layout with the lowest $/Mtok output among those that fit (`--plan auto`):
    the sweep to 10M tokens shows devices needed and cost instead of 'does not fit'."""
    t = np.asarray(contexts, dtype=np.float64)
    best: dict[str, Any] | None = None
    labels = np.full(t.shape, "none", dtype=object)
    for layout in enumerate_layouts(spec, hw, max_devices):
        try:
            g = layout_grid(spec, hw, dep, layout, t, overlap, engine)
        except CostsimError:
            continue
        cost = np.where(g["fits_memory"], g["usd_per_mtok_output"], np.inf)
        if best is None:
            best = {k: np.array(v, dtype=np.float64) for k, v in g.items()}
            best["usd_per_mtok_output"] = cost
            labels[np.isfinite(cost)] = layout.label()
            continue
        better = cost < best["usd_per_mtok_output"]
        for k, v in g.items():
            best[k] = np.where(better, v if k != "usd_per_mtok_output" else cost, best[k])
        labels[better] = layout.label()
    if best is None:
        raise CostsimError(f"plan: no valid layout of {spec.name} on {hw.name}; check the model's head counts")
    best["fits_memory"] = np.isfinite(best["usd_per_mtok_output"])
    best["layout"] = labels
    return best


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
         ttft_target_s: float | None = None, max_devices: int = 72, overlap: bool = True,
         engine: Any = None) -> dict[str, Any]:
    """Every layout up to `max_devices`: the cheapest per output Mtok ("chosen"), the fastest and the
    one with the fewest devices among those that fit and meet the targets, and each rejected layout
    with its reason."""
    feasible, rejected = [], []
    for layout in enumerate_layouts(spec, hw, max_devices):
        try:
            r = evaluate_layout(spec, hw, dep, layout, context, None, tpot_target_s, overlap, engine)
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


def disaggregated(spec: ModelSpec, hw: HardwareProfile, dep: Deployment, prompt: int, output: int,
                  prefill_layout: Layout, decode_layout: Layout, tpot_target_s: float | None = None,
                  overlap: bool = True, engine: Any = None) -> dict[str, Any]:
    """Prefill and decode on separate pools (DistServe / Dynamo style) against one colocated pool.

    Decode replicas run `decode_layout` at the largest batch that fits the full context (or meets the
    TPOT target); prefill replicas run `prefill_layout` one prompt at a time. The prompt's cache moves
    from the prefill to the decode replica over the scale-up links when both fit in one domain, else
    over the scale-out network, every sending device in parallel. Pools are sized so prefill keeps up
    with decode: prefill replicas per decode replica = decode request rate x prefill time. Colocated:
    the decode layout also prefills, and decode stops while it does (no chunked-prefill overlap)."""
    context = prompt + output
    dec = evaluate_layout(spec, hw, dep, decode_layout, context, None, tpot_target_s, overlap, engine)
    if "reason" in dec:
        raise CostsimError(f"disaggregate: the decode layout {decode_layout.label()} {dec['reason']}")
    pre_sh = _Sharded(spec, hw, dep, prefill_layout, overlap, engine=engine)
    if pre_sh.max_batch_at(np.asarray(float(prompt))) < 1:
        raise CostsimError(f"disaggregate: the prefill layout {prefill_layout.label()} cannot hold one prompt of "
                           f"{prompt:,} tokens; give it more devices (--prefill-layout)")
    ttft_p = float(pre_sh.ttft(np.asarray(float(prompt))))
    kv = float(mc.cache_bytes(spec, np.asarray(float(prompt)), dep.precision))
    senders = min(prefill_layout.devices_per_replica, decode_layout.devices_per_replica)
    span = prefill_layout.devices_per_replica + decode_layout.devices_per_replica
    if span > hw.scale_up_domain and hw.scale_out_gb_s <= 0:
        raise CostsimError(f"disaggregate: moving the cache between the prefill and decode replicas ({span} devices) "
                           f"{comm.no_scale_out(hw)}; give the two layouts at most {hw.scale_up_domain} devices "
                           "together")
    bw, lat = comm.link(hw, span)
    transfer = kv / (senders * bw) + lat
    per_request_decode_s = output * dec["tpot_s"] / dec["batch"]  # decode-replica seconds per request
    decode_rate = 1.0 / per_request_decode_s
    prefill_per_decode = decode_rate * ttft_p
    usd_s_p, usd_s_d = pre_sh.usd_s, dec["devices"] * hw.usd_per_hour / 3600.0 / dep.utilisation
    usd_request = usd_s_p * ttft_p + usd_s_d * per_request_decode_s
    colocated_ttft = float(_Sharded(spec, hw, dep, decode_layout, overlap, engine=engine).ttft(
        np.asarray(float(prompt))))
    colocated_usd = usd_s_d * (colocated_ttft + per_request_decode_s)
    tokens = prompt + output
    return {"model": spec.name, "hardware": hw.name, "prompt_tokens": prompt, "output_tokens": output,
            "prefill": {"layout": prefill_layout.as_dict(), "label": prefill_layout.label(),
                        "devices": prefill_layout.devices_per_replica, "time_s": ttft_p,
                        "replicas_per_decode_replica": prefill_per_decode},
            "decode": {"layout": decode_layout.as_dict(), "label": decode_layout.label(),
                       "devices": decode_layout.devices_per_replica, "batch": dec["batch"], "tpot_s": dec["tpot_s"],
                       "requests_per_s": decode_rate},
            "kv_transfer_bytes": kv, "kv_transfer_s": transfer,
            "devices_per_decode_replica_with_its_prefill_share":
                decode_layout.devices_per_replica + prefill_per_decode * prefill_layout.devices_per_replica,
            "ttft_s": ttft_p + transfer, "tpot_s": dec["tpot_s"],
            "usd_per_request": usd_request, "usd_per_mtok_blended": usd_request / tokens * 1e6,
            "colocated": {"ttft_s": colocated_ttft, "usd_per_request": colocated_usd,
                          "usd_per_mtok_blended": colocated_usd / tokens * 1e6}}
