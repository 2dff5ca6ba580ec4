"""Request workloads on one replica: what N concurrent users, a request rate, or an offline batch get.

The engine's step loop is solved in steady state, vectorised over the number of running sequences b
(docs/serving.md derives each line). Every request has `isl` prompt and `osl` output tokens.

Continuous batching with chunked prefill (vLLM, SGLang): per step, r requests complete; d = r (osl - 1) / tau
sequences decode (tau tokens per step, 1 without speculation); their prompts add r isl prefill tokens,
packed into mixed steps of up to T - d tokens (T = max_batched_tokens). A request holds its slot for
k = max(1, isl / (T - d)) prefill steps and (osl - 1) / tau decode steps, so b = r (k + (osl - 1) / tau).
A fraction phi = r isl / n of steps carry a chunk of n = min(max(isl, r isl), T - d) tokens:
    step (mean) = phi x mixed(d, n) + (1 - phi) x decode(d)
Without chunked prefill (TensorRT-LLM's default) whole prompts join the running batch (in-flight
batching): a mixed step carries as many whole prompts as T - d allows, at least one. Static batching
(PyTorch eager) runs waves: b prompts prefilled, then osl - 1 decode steps of the whole batch.

Loads: `concurrency` N users in a closed loop (each sends its next request when the last finishes) run
min(N, capacity) sequences, the rest wait (Little's law gives the wait); a Poisson `request_rate` is served
by the smallest b whose throughput matches it, and waits in an M/D/c queue over the capacity's slots
(Erlang C with the Allen-Cunneen factor (1 + 0) / 2 for deterministic service); `offline` N requests all
queued at once run at capacity and take N / throughput. Inside the engine a prompt also waits behind other
prompts for the step budget: an M/D/1 wait on the prefill work, busy for the share of time in mixed steps.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from costsim.serving.steps import StepModel
from costsim.spec.engine import Speculation

Z99 = 2.326  # one-sided 99th percentile of the standard normal


@dataclass(frozen=True)
class Workload:
    isl: int
    osl: int
    concurrency: np.ndarray | None = None  # closed loop, users
    request_rate: np.ndarray | None = None  # open loop, requests / s
    offline_requests: int | None = None

    @property
    def kind(self) -> str:
        if self.concurrency is not None:
            return "concurrency"
        if self.request_rate is not None:
            return "request_rate"
        return "offline"


def capacity(model: StepModel, isl: int, osl: int) -> float:
    """Sequences the pool holds at once: at the full prompt + output where the engine reserves it, else at
    the average context of a running sequence (prompt + half the output)."""
    s = model.engine.scheduler
    context = isl + osl if s.reserve_full_context else isl + osl / 2.0
    return float(model.max_sequences(float(context)))


def _steady(model: StepModel, isl: int, osl: int, b: np.ndarray, spec_method: Speculation | None
            ) -> dict[str, np.ndarray]:
    """Steady state of b running sequences: step times, completions per step, latencies per request."""
    s = model.engine.scheduler
    tau = spec_method.acceptance_length if spec_method else 1.0
    decode_steps = max(osl - 1, 0) / tau
    context = isl + osl / 2.0
    budget = float(s.max_batched_tokens)
    b = np.asarray(b, dtype=np.float64)

    def decode_time(d: np.ndarray) -> np.ndarray:
        if spec_method is None:
            return model.decode(context, np.maximum(d, 1.0))
        return model.verify(context, np.maximum(d, 1.0), spec_method)

    if not s.continuous_batching:  # static waves of b
        t_pre = model.prefill(float(isl)) * b  # b prompts, one after another's FLOPs
        t_dec = decode_time(b)
        wave = t_pre + decode_steps * t_dec
        return {"b": b, "decoding": b, "t_decode": t_dec, "t_mixed": t_dec + t_pre, "phi": 1.0 / np.maximum(
            decode_steps + 1.0, 1.0) + 0 * b, "step": wave / np.maximum(decode_steps + 1.0, 1.0),
            "requests_per_s": b / wave, "prefill_wait": t_pre, "prefill_share": t_pre / wave,
            "chunk_steps": 1.0 + 0 * b}
    k = np.ones_like(b)
    for _ in range(4):  # fixed point: prefill steps per request depend on the decodes sharing the budget
        r = b / (k + decode_steps)
        d = r * decode_steps
        room = np.maximum(budget - d, 1.0)
        k = np.maximum(1.0, isl / room) if s.chunked_prefill else np.ones_like(b)
    r = b / (k + decode_steps)
    d = r * decode_steps
    t_dec = decode_time(d)
    room = np.maximum(budget - d, 1.0)
    if s.chunked_prefill:  # prompts split into chunks that fill the step's free token budget
        chunk = np.minimum(np.maximum(float(isl), r * isl), room)
        cached = np.maximum(isl - chunk, 0.0) / 2.0  # a long prompt's later chunks attend to its earlier ones
    else:  # whole prompts join the running batch (in-flight batching), as many as the budget takes, at least one
        prompts = np.maximum(np.minimum(np.floor(room / isl), np.ceil(r)), 1.0)
        chunk = prompts * isl
        cached = np.zeros_like(chunk)
    phi = np.minimum(r * isl / chunk, 1.0)
    extra = model.mixed(context, np.maximum(d, 1.0), chunk, cached) - model.decode(context, np.maximum(d, 1.0))
    t_mix = t_dec + np.maximum(extra, 0.0)
    step = phi * t_mix + (1.0 - phi) * t_dec
    prefill_time = t_mix * k
    prefill_share = phi * (t_mix - t_dec) / step
    return {"b": b, "decoding": d, "t_decode": t_dec, "t_mixed": t_mix, "phi": phi, "step": step,
            "requests_per_s": r / step, "prefill_wait": prefill_time, "prefill_share": prefill_share,
            "chunk_steps": k}


def _erlang_c(servers: np.ndarray, load: np.ndarray) -> np.ndarray:
    """Probability that an arrival waits in an M/M/c queue (c servers, offered load a < c), vectorised:
    Erlang B by its recurrence B_k = a B_{k-1} / (k + a B_{k-1}), then C = B / (1 - (a / c)(1 - B))."""
    c = np.asarray(servers, dtype=np.float64)
    a = np.asarray(load, dtype=np.float64)
    c, a = np.broadcast_arrays(c, a)
    blocking = np.ones_like(a)
    out = np.ones_like(a)
    for k in range(1, int(np.max(c)) + 1):
        blocking = a * blocking / (k + a * blocking)
        out = np.where(c == k, blocking, out)
    rho = np.minimum(a / np.maximum(c, 1.0), 1.0)
    return np.where(a < c, out / np.maximum(1.0 - rho * (1.0 - out), 1e-300), 1.0)


def run(model: StepModel, work: Workload, spec_method: Speculation | None = None) -> dict[str, Any]:
    """Every figure of the `costsim serve` contract, as arrays over the load levels."""
    isl, osl = work.isl, work.osl
    tau = spec_method.acceptance_length if spec_method else 1.0
    cap = capacity(model, isl, osl)
    floor = model.engine.overheads.ttft_floor_s
    if cap < 1:
        return {"fits_memory": False, "capacity": cap}
    s = model.engine.scheduler
    if s.continuous_batching and not s.chunked_prefill and isl > s.max_batched_tokens:
        return {"fits_memory": True, "capacity": cap, "refused": (
            f"{model.engine.name} runs prompts whole (no chunked prefill) and takes at most {s.max_batched_tokens:,} "
            f"tokens per step; a {isl:,}-token prompt needs chunked prefill on or a larger max_batched_tokens in "
            f"an engine profile, or another engine")}
    if work.kind == "concurrency":
        users = np.asarray(work.concurrency, dtype=np.float64)
        b = np.minimum(users, cap)
        st = _steady(model, isl, osl, b, spec_method)
        lifetime = b / st["requests_per_s"]
        queue = (users - b) / st["requests_per_s"]  # Little: the users beyond capacity wait their turn
        queue99 = queue
        load = users
    elif work.kind == "request_rate":
        rate = np.asarray(work.request_rate, dtype=np.float64)
        grid = np.unique(np.concatenate([np.geomspace(1.0, cap, num=min(int(cap), 256)), [cap]]))
        grid_st = _steady(model, isl, osl, grid, spec_method)
        top = float(grid_st["requests_per_s"][-1])
        # the running batch whose throughput matches the arrival rate (throughput rises with b)
        b = np.interp(rate, grid_st["requests_per_s"], grid, left=grid[0], right=cap)
        st = _steady(model, isl, osl, b, spec_method)
        lifetime = b / st["requests_per_s"]
        service = cap / top  # a slot's time per request at full load
        offered = rate * service
        waits = _erlang_c(np.full_like(rate, np.floor(cap)), offered)
        gap = np.maximum(np.floor(cap) - offered, 1e-12)
        factor = 0.5  # Allen-Cunneen: (ca^2 + cs^2) / 2 with Poisson arrivals and fixed lengths
        queue = factor * waits * service / gap
        queue99 = np.where(waits > 0.01, factor * service / gap * np.log(np.maximum(waits, 0.01) / 0.01), 0.0)
        saturated = rate >= top
        queue = np.where(saturated, np.inf, queue)
        queue99 = np.where(saturated, np.inf, queue99)
        load = rate
    else:
        n = float(work.offline_requests or 1)
        b = np.asarray([min(n, cap)])
        st = _steady(model, isl, osl, b, spec_method)
        lifetime = b / st["requests_per_s"]
        queue = np.asarray([0.5 * max(n - b[0], 0.0) / st["requests_per_s"][0]])  # mean wait for a slot
        queue99 = np.asarray([0.99 * max(n - b[0], 0.0) / st["requests_per_s"][0]])
        load = np.asarray([n])
    step, t_dec, t_mix, phi = st["step"], st["t_decode"], st["t_mixed"], st["phi"]
    out_tps = st["requests_per_s"] * osl
    in_tps = st["requests_per_s"] * isl
    tpot_mean = step / tau
    spread = Z99 * np.sqrt(phi * (1.0 - phi) / max(osl - 1, 1)) * (t_mix - t_dec) / tau
    itl50 = np.where(phi < 0.5, t_dec, t_mix)
    itl99 = np.where(phi > 0.01, t_mix, t_dec)
    # prompts queue for the step budget behind other prompts: an M/D/1 wait (Pollaczek-Khinchine with fixed
    # service) on the prefill "server", busy for the share of time spent in mixed steps; in a closed loop
    # only the other N - 1 users' prompts contend
    others = np.clip((load - 1.0) / np.maximum(load, 1.0), 0.0, 1.0) if work.kind == "concurrency" else 1.0
    busy = np.clip(others * phi * t_mix / step, 0.0, 0.99)
    behind = busy * st["prefill_wait"] / (2.0 * (1.0 - busy))
    behind99 = np.where(busy > 0.01, st["prefill_wait"] * np.log(np.maximum(busy, 0.01) / 0.01) * busy
                        / (1.0 - busy), 0.0)
    ttft = floor + st["prefill_wait"] + 0.5 * step + queue + behind
    ttft99 = floor + st["prefill_wait"] + step + queue99 + behind99
    usd_s = model.usd_per_s
    share = st["prefill_share"]
    with np.errstate(divide="ignore", invalid="ignore"):
        return {
            "fits_memory": True, "capacity": cap, "load": load, "batch": b, "decoding": st["decoding"],
            "output_tokens_per_s": out_tps, "output_tokens_per_s_per_device": out_tps / model.devices,
            "total_tokens_per_s": out_tps + in_tps, "tokens_per_s_per_user": 1.0 / tpot_mean,
            "requests_per_s": st["requests_per_s"],
            "ttft_s": {"mean": ttft, "p50": ttft, "p99": ttft99},
            "tpot_s": {"mean": tpot_mean, "p50": tpot_mean, "p99": tpot_mean + spread},
            "itl_s": {"mean": step, "p50": itl50, "p99": itl99},
            "request_latency_s": ttft + max(osl - 1, 0) * tpot_mean,
            "slot_time_s": lifetime,
            "usd_per_mtok_output": usd_s * (1.0 - share) / out_tps * 1e6,
            "usd_per_mtok_input": usd_s * share / in_tps * 1e6,
            "mixed_step_fraction": phi, "prefill_share_of_time": share,
        }
