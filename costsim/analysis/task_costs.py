"""Cost one agent task turn by turn, vectorised over Monte Carlo samples of its token counts.

Per turn, for every sample at once:
- the previous context is found in the prefix cache at the scenario's hit rate (a gap longer than
  `evict_after_s`, a compaction or a truncation is a miss); missed tokens are prefilled again with
  the new ones, on top of the cached part: prefill time x device price;
- reasoning and output tokens are decoded at the growing context, priced at $/Mtok output of the
  largest batch that fits at the turn's final context (decode time is linear in context, so the
  average context gives the exact sum);
- cached tokens cost one read of their cache entry ($/Mtok cached input);
- during the tool latency the context's cache stays in device memory: its share of the usable
  memory x price x seconds;
- reasoning is dropped from the context after the turn, output is kept; past `limit_tokens` the
  context is compacted (or truncated) and the next turn misses the cache.
A single turn with no system prompt and no latency costs exactly what `costsim estimate --prompt P
--output-tokens O` reports.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from costsim.analysis.inspection import growing_cache_bytes_per_token
from costsim.engine.timing import decode_step_time, prefill_time
from costsim.families import model_costs as mc
from costsim.serving.capacity import SECONDS_PER_HOUR, max_batch, usable_cache_bytes, usd_per_mtok
from costsim.spec.deployment import Deployment
from costsim.spec.hardware import HardwareProfile
from costsim.spec.layout import Layout
from costsim.spec.model import ModelSpec
from costsim.spec.scenario import ApiPrice, Scenario, sample


@dataclass
class TaskCost:
    usd: np.ndarray  # per sample
    wall_time_s: np.ndarray
    peak_cache_bytes: np.ndarray
    tokens: dict[str, np.ndarray]
    usd_by_kind: dict[str, np.ndarray]
    per_turn_usd: list[np.ndarray]
    per_turn_context: list[np.ndarray]
    usable_cache_bytes: float
    per_turn_by_kind: list[dict[str, np.ndarray]] | None = None
    api_usd: np.ndarray | None = None


def api_turn_usd(api: ApiPrice, prompt: np.ndarray, fresh: np.ndarray, hit: np.ndarray,
                 decoded: np.ndarray) -> np.ndarray:
    """What a provider charges for one turn: fresh input (plus a cache write where priced), cache hits,
    and reasoning + output at the output rate; the long-context tier where the prompt passes it."""
    def rate(short: float, long: float | None) -> np.ndarray:
        if api.long_context_threshold_tokens is None or long is None:
            return np.full_like(prompt, short)
        return np.where(prompt > api.long_context_threshold_tokens, long, short)

    write = api.usd_per_mtok_cache_write or 0.0
    return (fresh * (rate(api.usd_per_mtok_input, api.long_usd_per_mtok_input) + write)
            + hit * rate(api.usd_per_mtok_cached_input, api.long_usd_per_mtok_cached_input)
            + decoded * rate(api.usd_per_mtok_output, api.long_usd_per_mtok_output)) / 1e6


class _OneDevice:
    """The serving system a task runs on: one accelerator (the engine's single-device functions)."""

    def __init__(self, spec: ModelSpec, hw: HardwareProfile, dep: Deployment):
        self.spec, self.hw, self.dep, self.p = spec, hw, dep, dep.precision
        self.price = hw.usd_per_hour * dep.devices / dep.utilisation
        self.usable = usable_cache_bytes(spec, hw, dep)
        growing = growing_cache_bytes_per_token(spec, self.p)
        self.read_s_per_token = growing / (hw.bandwidth_bytes_s * hw.efficiency.memory_max)

    def prefill_s(self, new: np.ndarray, cached: np.ndarray) -> np.ndarray:
        return prefill_time(self.spec, self.hw, new, cached, 1, self.p, self.dep.prefill_chunk_tokens).total_s

    def max_batch(self, context: np.ndarray) -> np.ndarray:
        return max_batch(self.spec, self.hw, self.dep, context)

    def tpot(self, context: np.ndarray, batch: np.ndarray) -> np.ndarray:
        return decode_step_time(self.spec, self.hw, context, batch, self.p, self.dep.cuda_graphs).total_s

    def cache_bytes(self, context: np.ndarray) -> np.ndarray:
        """Cache of one sequence on the device that holds most of it (the whole cache on one device)."""
        return mc.cache_bytes(self.spec, context, self.p)

    def memory_share(self, context: np.ndarray) -> np.ndarray:
        """Share of the system's usable cache memory one sequence of `context` tokens holds."""
        return self.cache_bytes(context) / max(self.usable, 1.0)


class _Layout(_OneDevice):
    """A multi-device replica with a parallel layout (serving/layouts.py): the same questions, asked of
    the sharded per-device model, with the whole replica's price."""

    def __init__(self, spec: ModelSpec, hw: HardwareProfile, dep: Deployment, layout: Layout, engine=None):
        from costsim.serving.layouts import Replica

        super().__init__(spec, hw, dep)
        self.sh = Replica(spec, hw, dep, layout, overlap=True, engine=engine)
        self.price = self.sh.usd_s * SECONDS_PER_HOUR
        self.usable = self.sh.usable
        # at a context past every window, as the single-device path reads only the growing layers
        self.read_s_per_token = float(self.sh.cached_read_s(np.asarray(1e6)))

    def prefill_s(self, new: np.ndarray, cached: np.ndarray) -> np.ndarray:
        return self.sh.ttft(new, cached)

    def max_batch(self, context: np.ndarray) -> np.ndarray:
        return self.sh.max_batch_at(context)

    def tpot(self, context: np.ndarray, batch: np.ndarray) -> np.ndarray:
        return self.sh.tpot(context, batch)

    def cache_bytes(self, context: np.ndarray) -> np.ndarray:
        return self.sh.cache_per_sequence(context)

    def memory_share(self, context: np.ndarray) -> np.ndarray:
        return self.sh.memory_share(context)


def run_task(scenario: Scenario, spec: ModelSpec, hw: HardwareProfile, dep: Deployment | None = None,
             samples: int = 1, seed: int = 0, api: ApiPrice | None = None, layout: Layout | None = None,
             engine: Any = "vllm") -> TaskCost:
    """One task, turn by turn, on one accelerator or (with `layout`) on one multi-device replica, as `engine`
    (a profile or a name, vllm by default) runs it: its pool, kernel list, CPU time, TTFT floor; None or
    'none': costsim's own kernel list and 10% reserve."""
    from costsim.inputs.engines import engine_or_none

    engine = engine_or_none(engine)
    dep = dep or Deployment()
    if not 0 <= seed < 2**63:
        from costsim.errors import CostsimError

        raise CostsimError(f"seed: must be a whole number from 0 to 2^63 - 1, got {seed}")
    rng = np.random.default_rng(seed)
    if engine is not None and layout is None:
        layout = Layout()  # an engine's rules live in the per-layout path
    system_ = _OneDevice(spec, hw, dep) if layout is None else _Layout(spec, hw, dep, layout, engine)
    price = system_.price
    usable = system_.usable
    zeros = np.zeros(samples)
    context = zeros.copy()
    cache_alive = np.zeros(samples, dtype=bool)
    tokens = {k: zeros.copy() for k in ("new_input", "cached_input", "recomputed_input", "reasoning", "output")}
    usd_by_kind = {k: zeros.copy() for k in ("prefill", "cached_input", "decode", "cache_hold")}
    wall = zeros.copy()
    peak = zeros.copy()
    per_turn_usd: list[np.ndarray] = []
    per_turn_context: list[np.ndarray] = []
    per_turn_by_kind: list[dict[str, np.ndarray]] = []
    system = sample(scenario.system_prompt_tokens, samples, rng)
    # a cache hit costs one read of the token's cache entry (the growing layers only)
    cached_usd_per_token = system_.read_s_per_token * price / SECONDS_PER_HOUR
    policy = scenario.context
    offload = scenario.prefix_cache.between_turns == "offload"
    offload_bw = 1e9 * (hw.host_link_gb_s if scenario.prefix_cache.offload_tier == "host" else hw.ssd_gb_s)
    returned = zeros.copy()  # sub-agent results waiting for the parent's next turn
    api_usd = zeros.copy()
    for index, turn in enumerate(scenario.all_turns()):
        new = sample(turn.input_tokens, samples, rng) + (system if index == 0 else 0.0) + returned
        returned = zeros.copy()
        reasoning = sample(turn.reasoning_tokens, samples, rng)
        output = sample(turn.output_tokens, samples, rng)
        hit = np.where(cache_alive, np.floor(scenario.prefix_cache.hit_rate * context), 0.0)
        # an offloaded prefix comes back over the host link (or from SSD) before the prefill can use it;
        # the copy engines do it, so it costs latency, not device dollars
        load_s = (system_.cache_bytes(hit) / offload_bw) if offload else zeros  # devices load their shards at once
        missed = context - hit
        prompt = context + new
        decoded = reasoning + output
        final = prompt + decoded
        prefill_s = np.where(missed + new > 0, system_.prefill_s(missed + new, hit), 0.0)
        batch = np.maximum(system_.max_batch(final), 1.0)
        tpot = system_.tpot(prompt + decoded / 2.0, batch)
        cost_prefill = prefill_s * price / SECONDS_PER_HOUR
        cost_decode = decoded * usd_per_mtok(price, batch / tpot) / 1e6
        cost_cached = hit * cached_usd_per_token
        kept = prompt + output
        keep = scenario.prefix_cache.between_turns == "keep"
        retained = keep or offload
        hold = system_.memory_share(kept) * price * turn.tool_latency_s / SECONDS_PER_HOUR if keep else zeros
        for kind, value in (("prefill", cost_prefill), ("decode", cost_decode), ("cached_input", cost_cached),
                            ("cache_hold", hold)):
            usd_by_kind[kind] += value
        if api is not None:
            api_usd += api_turn_usd(api, prompt, missed + new, hit, decoded)
        tokens["new_input"] += new
        tokens["cached_input"] += hit
        tokens["recomputed_input"] += missed
        tokens["reasoning"] += reasoning
        tokens["output"] += output
        wall += load_s + prefill_s + decoded * tpot + turn.tool_latency_s
        peak = np.maximum(peak, system_.cache_bytes(final))
        per_turn_usd.append(cost_prefill + cost_decode + cost_cached + hold)
        per_turn_by_kind.append({"prefill": cost_prefill, "cached_input": cost_cached, "decode": cost_decode,
                                 "cache_hold": hold})
        per_turn_context.append(kept)
        sub = scenario.subagents
        if sub is not None and index == sub.after_turn:
            # `count` sub-agents run in parallel: all their dollars, one's wall time, all their caches at once
            child = run_task(sub.as_scenario(scenario.name), spec, hw, dep, samples, seed + 1 + index, api, layout,
                             engine)
            if api is not None:
                api_usd += sub.count * child.api_usd
            for kind, value in child.usd_by_kind.items():
                usd_by_kind[kind] += sub.count * value
            for kind, value in child.tokens.items():
                tokens[kind] += sub.count * value
            wall += child.wall_time_s
            peak = np.maximum(peak, system_.cache_bytes(kept) + sub.count * child.peak_cache_bytes)
            returned = sub.count * sample(sub.return_tokens, samples, rng)
        # what the next turn sees
        evicted = not retained or (scenario.prefix_cache.evict_after_s is not None
                               and turn.tool_latency_s > scenario.prefix_cache.evict_after_s)
        context = kept
        cache_alive = np.full(samples, not evicted)
        if policy.limit_tokens is not None:
            over = context > policy.limit_tokens
            cut = policy.compact_to_tokens if policy.on_limit == "compact" else policy.limit_tokens
            context = np.where(over, np.minimum(context, cut), context)
            cache_alive = cache_alive & ~over  # a rewritten prefix is not in the cache
    usd = sum(usd_by_kind.values())
    return TaskCost(usd=usd, wall_time_s=wall, peak_cache_bytes=peak, tokens=tokens, usd_by_kind=usd_by_kind,
                    per_turn_usd=per_turn_usd, per_turn_context=per_turn_context, usable_cache_bytes=usable,
                    per_turn_by_kind=per_turn_by_kind,
                    api_usd=api_usd if api is not None else None)


def _common(task: TaskCost, usd: np.ndarray | None) -> dict[str, Any]:
    """The keys both pricing modes report: dollars (when known), cache hits, tokens, blended price."""
    total_tokens = sum(v.mean() for v in task.tokens.values())
    processed = task.tokens["cached_input"] + task.tokens["recomputed_input"] + task.tokens["new_input"]
    known = usd is not None
    return {
        "usd_per_task": float(usd.mean()) if known else None,
        "usd_p50": float(np.percentile(usd, 50)) if known else None,
        "usd_p90": float(np.percentile(usd, 90)) if known else None,
        "cache_hit_ratio": float(task.tokens["cached_input"].sum() / max(processed.sum(), 1.0)),
        "tokens": {k: float(v.mean()) for k, v in task.tokens.items()},
        "usd_per_mtok_blended": float(usd.mean() / max(total_tokens, 1.0) * 1e6) if known else None,
        "turns": len(task.per_turn_usd),
    }


def summarize_api(task: TaskCost) -> dict[str, Any]:
    """The same keys for paying a provider instead of running the model (no memory or wall time)."""
    assert task.api_usd is not None
    return {"fits_memory": True, **_common(task, task.api_usd), "wall_time_s": None, "peak_cache_bytes": None}


def summarize(task: TaskCost) -> dict[str, Any]:
    """The `costsim scenario run --format json` contract (docs/contracts.md)."""
    fits = bool(task.usable_cache_bytes > 0 and np.all(task.peak_cache_bytes <= task.usable_cache_bytes))
    if not fits:
        # no dollars or times for a deployment that cannot hold the task: never a silently wrong number
        return {"fits_memory": False, **_common(task, None), "wall_time_s": None,
                "peak_cache_bytes": float(task.peak_cache_bytes.mean()),
                "memory_shortfall_bytes": float(max(task.peak_cache_bytes.max() - task.usable_cache_bytes, 0.0)),
                "usd_by_kind": None}
    return {
        "fits_memory": True,
        **_common(task, task.usd),
        "wall_time_s": float(task.wall_time_s.mean()),
        "peak_cache_bytes": float(task.peak_cache_bytes.mean()),
        "usd_by_kind": {k: float(v.mean()) for k, v in task.usd_by_kind.items()},
    }
