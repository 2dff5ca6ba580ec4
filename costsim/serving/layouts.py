"""One model replica over several devices: per-device model, memory, step times with communication,
and the search over layouts behind `costsim plan` (docs/deployments.md).

Per device, a layout runs one pipeline stage of a *sharded* model (every distinct contiguous block
of ceil(layers / pp) layers is built: memory must fit on each, decode waits for the slowest), heads
and FFN widths divided by tp, KV heads by tp where they divide (replicated beyond: GQA with 8 KV
heads at tp=16 keeps one per device), MLA's latent replicated over tp (it has one head), experts
divided by ep, the vocabulary by tp, and the context by cp. The single-device engine then times that
model, and the collectives of `engine/comm.py` (through engine/sharding.py) are added:

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

from collections.abc import Callable
from typing import Any

import numpy as np

from costsim.engine import comm
from costsim.engine.sharding import (
    check_layout,
    comm_per_stage,
    pipeline_stages,
    ring_bytes,
    shard_model,
    stage_weight_bytes,
)
from costsim.engine.timing import KernelPlan, decode_step_time, prefill_time
from costsim.families import model_costs as mc
from costsim.families.cost import ArrayLike
from costsim.spec.deployment import Deployment
from costsim.spec.hardware import HardwareProfile
from costsim.spec.layout import Layout
from costsim.spec.model import ModelSpec


class Replica:
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
        per_position = stage_weight_bytes(self.stages, order, self.p)
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
            comm_per_stage(st, self.hw, lay, micro, p.act_bytes, "decode") for st in self.stages])), axis=0)
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
        eff = self.hw.efficiency  # this device's own time per engine step (published fit)
        gpu = gpu + eff.published_step_s_by_engine.get(self.engine.name, eff.published_step_s)
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
            comm_pre = comm_per_stage(st, self.hw, lay, n_local * batch, p.act_bytes, "prefill")
            ring = np.zeros_like(n_local)
            if lay.cp > 1:
                ring_total = (lay.cp - 1) * comm.point_to_point(self.hw, batch * ring_bytes(st, n_local, p),
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
    sh = Replica(spec, hw, dep, layout, overlap, engine=engine)
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
    sh = Replica(spec, hw, dep, layout, overlap, engine=engine)
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
