"""Execution time of a prefill or decode step on one device: a roofline per kernel class.

For each class (GEMM, attention core, recurrent update, chunked scan, elementwise, LM head):
    time = kernels x overhead + max(matrix FLOPs / (peak x e_c) + vector FLOPs / (vector peak x e_v),
                                    bytes / (bandwidth x e_m(bytes per kernel)))
with efficiencies from the hardware profile that depend on the size of the work: a one-row GEMM
does not reach peak, a 1 MB read does not reach full bandwidth. No global fudge factor. Timing is
kept apart from serving and cost (Vidur's separation): this module only answers "how long".
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from costsim.families import elementwise, module_for, projection_matrices
from costsim.families import ffn as ffn_family
from costsim.families import mla as mla_family
from costsim.families.cost import ArrayLike, Cost, as_array, gemm_cost
from costsim.families.kernel_tiles import FLASHMLA_TILE_ROWS
from costsim.spec.dtypes import Precision
from costsim.spec.hardware import Efficiency, HardwareProfile
from costsim.spec.model import RECURRENT_FAMILIES, MLAttention, ModelSpec

DEFAULT_PRECISION = Precision()


@dataclass(frozen=True)
class KernelPlan:
    """A serving engine's kernel list, as the timing model needs it (built from an engine profile by
    costsim/serving/engines.py). None anywhere below means costsim's own default kernel list, the one
    the whole-step harness was checked against: one GEMM per weight matrix, fused elementwise kernels."""

    fused_projections: bool = True
    norm_kernels: int = 1
    norm_traffic: float = 1.0
    rope_kernels: int = 1
    activation_kernels: int = 1
    other_traffic: float = 1.0
    recurrent_pass_kernels: int = 1
    recurrent_pass_traffic: float = 1.0
    cuda_graphs: bool = True
    max_graph_batch: int = 512
    host_per_kernel_s: float = 0.0
    qk_norm_kernels: int = 0
    recurrent_prefill_kernels: int = 1
    host_attention_call_s: float = 0.0
    host_recurrent_decode_call_s: float = 0.0
    host_recurrent_prefill_call_s: float = 0.0
    elementwise_bandwidth: float = 1.0
    decode_table: str | None = None
    prefill_table: str | None = None
    mla_decode_table: str | None = "flashmla"


def fused_gemm_count(matrices: list[tuple[float, float]], d: int) -> int:
    """GEMM launches when the projections that read the same input (K = d: QKV, gate+up, MLA's q_a + kv_a)
    run as one: one for those, one per other matrix."""
    reads_input = sum(1 for k, _ in matrices if k == d)
    return (1 if reads_input else 0) + len(matrices) - reads_input


def _expand(kernels: list[float], plan: KernelPlan | None, first: int, first_traffic: float,
            second: int | None = None, rest_launches: int = 1, rest_traffic: float | None = None) -> list[float]:
    """A block's elementwise kernels as `plan` launches them: the first (the pre-norm) as `first`
    launches moving `first_traffic` times its bytes, the second (rotary or activation) as `second`
    launches, the rest at `rest_traffic` (default: the plan's traffic factor), `rest_launches` launches
    each. Launch counts matter:
    each pays a fixed latency (and, in eager PyTorch, the host's time to issue it)."""
    if plan is None or not kernels:
        return kernels
    out = [kernels[0] * first_traffic / first] * first
    rest = kernels[1:]
    if second is not None and rest:
        out += [rest[0] * plan.other_traffic / second] * second
        rest = rest[1:]
    traffic = plan.other_traffic if rest_traffic is None else rest_traffic
    return out + [k * traffic / rest_launches for k in rest for _ in range(rest_launches)]


@dataclass(frozen=True)
class StepTime:
    """Time of one step on one device: `total_s`, and `by_class`, its parts by kernel class (gemm,
    attention_prefill / attention_decode, scan, state_update, elementwise, lm_head, overhead, and in
    prefill weights_per_chunk); arrays broadcast over the step's arguments."""

    total_s: np.ndarray
    by_class: dict[str, np.ndarray]


def _saturating(x: np.ndarray, top: float, half: float) -> np.ndarray:
    x = np.maximum(x, 1e-30)
    return top * x / (x + half)


def _kernel_time(c: Cost, hw: HardwareProfile, p: Precision, matrix_eff: np.ndarray | float,
                 roofline_exponent: ArrayLike | None = None) -> np.ndarray:
    """max(compute, memory), or with an exponent their soft maximum (GEMMs: `matmul_roofline_exponent`)."""
    eff = hw.efficiency
    compute = c.flops_matrix / (hw.peak_flops(p.weights) * matrix_eff) + c.flops_vector / (
        hw.vector_tflops * 1e12 * eff.vector_max)
    moved = c.bytes_total
    memory = moved / (hw.bandwidth_bytes_s * _saturating(moved, eff.memory_max, eff.memory_half_bytes))
    if roofline_exponent is None:
        return np.maximum(compute, memory)
    return _soft_max(compute, memory, roofline_exponent)


def _gemm_eff(hw: HardwareProfile, rows: np.ndarray) -> np.ndarray:
    return _saturating(as_array(rows), hw.efficiency.matmul_max, hw.efficiency.matmul_half_rows)


def gemm_depth_factor(hw: HardwareProfile, matrices: list[tuple[float, float]],
                      weights: list[float] | None = None) -> float:
    """Share of a GEMM group's compute time spent in mainloops: sum(K N w) / sum((K + half_k) N w) over
    its (K, N) weight matrices, each weighted by its rows per token w (top_k for routed experts)."""
    if not matrices:
        return 1.0
    w = weights or [1.0] * len(matrices)
    useful = sum(k * n * x for (k, n), x in zip(matrices, w, strict=True))
    # the efficiencies may be arrays (several profiles stacked for one vectorised comparison)
    half_k = np.asarray(hw.efficiency.matmul_half_k, dtype=np.float64)
    return useful / (useful + half_k * sum(n * x for (_, n), x in zip(matrices, w, strict=True)))


def _soft_max(a: np.ndarray, b: np.ndarray, exponent: ArrayLike) -> np.ndarray:
    """(a^e + b^e)^(1/e), the plain max where e is 0; e may be an array (stacked profiles)."""
    e = np.asarray(exponent, dtype=np.float64)
    plain = np.maximum(a, b)
    safe = np.where(e > 0, e, 1.0)
    top = np.maximum(plain, 1e-300)
    smooth = top * ((a / top) ** safe + (b / top) ** safe) ** (1.0 / safe)
    return np.where(e > 0, smooth, plain)


def gemm_time(c: Cost, hw: HardwareProfile, p: Precision, rows: np.ndarray, depth: float = 1.0) -> np.ndarray:
    """Roofline time of a GEMM (group) of `rows` rows: compute at the GEMM curve times the depth factor,
    memory on the streaming curve, combined by `matmul_roofline_exponent` (docs/timing.md)."""
    return _kernel_time(c, hw, p, _gemm_eff(hw, rows) * depth, hw.efficiency.matmul_roofline_exponent)


# The kernel library the engine assumes for linear / delta / SSM layers (calibrate's --scan-source):
# where the profile holds a fitted table for that library's kernel of this family, it is used.
SCAN_SOURCE = "fla"
MLA_DECODE_IMPLEMENTATION = "flashmla/attention_decode/mla"
RECURRENT_VARIANT = {"linear": "lightning", "mamba2": "mamba2", "mamba": "mamba"}


def _with_efficiency(hw: HardwareProfile, change: Callable[[Efficiency], Efficiency]) -> HardwareProfile:
    """`hw` with `change` applied to its efficiencies, per device of a stacked profile."""
    from costsim.engine.stacked import StackedHardware

    if isinstance(hw, StackedHardware):  # resolve per device, then stack again
        return StackedHardware([_with_efficiency(one, change) for one in hw.profiles])
    eff = change(hw.efficiency)
    return hw if eff is hw.efficiency else hw.model_copy(update={"efficiency": eff})


def attention_table_key(klass: str, mixer, plan: KernelPlan | None) -> str | None:
    """The hardware profile's fitted table that prices a softmax or MLA core under `plan` (None: costsim's
    defaults). Softmax decode tables are per head dim and GQA/MHA, as `costsim calibrate` stores them."""
    if plan is None:
        return MLA_DECODE_IMPLEMENTATION if klass == "attention_decode" and isinstance(mixer, MLAttention) else None
    if mixer.family == "dsa":
        return None  # DeepSeek sparse attention's kernel has no fitted table: the defaults
    if isinstance(mixer, MLAttention):
        if klass == "attention_decode" and plan.mla_decode_table:
            return f"{plan.mla_decode_table}/attention_decode/mla"
        return None  # MLA prefill runs as dense attention over decompressed heads: the defaults
    if klass == "attention_decode" and plan.decode_table:
        kind = "mha" if mixer.num_kv_heads == mixer.num_heads else "gqa"
        return f"{plan.decode_table}/attention_decode/{kind}_d{mixer.head_dim}"
    if klass == "attention_prefill" and plan.prefill_table:
        return f"{plan.prefill_table}/attention_prefill"
    return None


def _core_profile(hw: HardwareProfile, klass: str, mixer, plan: KernelPlan | None = None) -> HardwareProfile:
    """The profile one mixer's core kernel is timed with: the fitted table of the implementation the
    engine assumes for it, where the profile holds one (fla's kernel of this recurrent family; FlashMLA
    for dense MLA decode; under an engine plan, the table its attention backend is priced with), and the
    state-update memory curve for recurrent decode."""
    if klass in ("state_update", "scan"):
        variant = getattr(mixer, "variant", None) or RECURRENT_VARIANT.get(mixer.family, mixer.family)
        op = "linear_decode" if klass == "state_update" else "linear_prefill"
        key = f"{SCAN_SOURCE}/{op}/{variant}"
        if klass == "state_update":
            return _with_efficiency(hw, lambda e: e.for_source(key).for_state_updates())
        return _with_efficiency(hw, lambda e: e.for_source(key))
    key = attention_table_key(klass, mixer, plan)  # DSA's sparse kernel: defaults
    if key is not None and (plan is not None or klass == "attention_decode"):
        return _with_efficiency(hw, lambda e: e.for_source(key))
    return hw


def _core_class(family: str, phase: str) -> str:
    if family in RECURRENT_FAMILIES:
        return "scan" if phase == "prefill" else "state_update"
    return "attention_prefill" if phase == "prefill" else "attention_decode"


def _core_eff(hw: HardwareProfile, klass: str, pairs_per_head: np.ndarray,
              flops: np.ndarray | float = 0.0) -> np.ndarray | float:
    e = hw.efficiency
    if klass == "scan":
        return _saturating(np.asarray(flops, dtype=np.float64), e.scan_max, e.scan_half_flops)
    if klass == "attention_prefill":
        return _saturating(pairs_per_head, e.attention_max, e.attention_half_pairs)
    return e.attention_max  # decode attention: compute rarely binds (MLA is the exception)


def _elementwise_time(elements_per_token: list[float], tokens: np.ndarray, hw: HardwareProfile,
                      p: Precision, plan: KernelPlan | None = None) -> np.ndarray:
    """Streaming kernels, one by one: a fixed latency (about one HBM round trip; a one-token norm takes
    ~1.4 us of device time) plus the bytes at the full streaming rate, or the fraction of it the plan's
    kernels reach (eager PyTorch's unfused ops about half). The memory curve fitted on copies of 1 MiB
    and more would charge a kilobyte kernel its ~3.5 us floor, twice what it takes."""
    e = hw.efficiency
    rate = hw.bandwidth_bytes_s * e.memory_max * (plan.elementwise_bandwidth if plan is not None else 1.0)
    streamed = tokens * float(sum(elements_per_token)) * p.act_bytes / rate
    return len(elements_per_token) * e.elementwise_latency_s + streamed


def _step_time(spec: ModelSpec, hw: HardwareProfile, p: Precision, phase: str, n: np.ndarray, c: np.ndarray,
               batch: np.ndarray, overhead_per_kernel: ArrayLike, plan: KernelPlan | None = None) -> StepTime:
    d = spec.hidden_size
    tokens = batch * n
    by_class: dict[str, np.ndarray] = {}
    kernels = 2.0  # final norm and LM head; every block adds its own below
    library_host = 0.0  # eager: host time of attention and recurrent library calls beyond their launches

    def add(klass: str, value: np.ndarray) -> None:
        by_class[klass] = by_class.get(klass, 0.0) + value

    for mixer, count in spec.mixer_groups:
        mod = module_for(mixer)
        whole = mod.prefill(mixer, d, n, c, batch, p) if phase == "prefill" else mod.decode(mixer, d, c, batch, p)
        gemm = gemm_cost(tokens, projection_matrices(mixer, d), p.weight_bytes, p.act_bytes)
        core = Cost(*(np.maximum(x - y, 0.0) for x, y in zip(whole.as_dict().values(), gemm.as_dict().values(),
                                                               strict=True)))
        klass = _core_class(mixer.family, phase)
        if klass == "attention_decode" and mixer.family == "mla":  # FlashMLA pads heads to its 64-row tile
            core = core + mla_family.decode_tile_padding(mixer, c, batch, FLASHMLA_TILE_ROWS)
        # (query, key) pairs per head, for the attention efficiency curve: 4 FLOPs per head dimension
        per_pair_per_head = 4.0 * getattr(mixer, "head_dim", getattr(mixer, "kv_lora_rank", 128))
        pairs_per_head = core.flops_matrix / (getattr(mixer, "num_heads", 1) * per_pair_per_head)
        mats = projection_matrices(mixer, d)
        gemm_kernels = fused_gemm_count(mats, d) if plan is not None and plan.fused_projections else len(mats)
        depth = gemm_depth_factor(hw, mats)
        add("gemm", count * (gemm_time(gemm, hw, p, tokens, depth) + gemm_kernels * hw.efficiency.matmul_latency_s))
        core_hw = _core_profile(hw, klass, mixer, plan)
        add(klass, count * _kernel_time(core, core_hw, p,
                                        _core_eff(core_hw, klass, pairs_per_head, core.flops_matrix)))
        small = elementwise.mixer_kernels(mixer, d)
        core_kernels = 1
        if plan is not None:
            rope = plan.rope_kernels if mixer.family in elementwise.SOFTMAX_HEADS else None
            recurrent = mixer.family in RECURRENT_FAMILIES
            small = _expand(small, plan, plan.norm_kernels, plan.norm_traffic, rope,
                            plan.recurrent_pass_kernels if recurrent else 1,
                            plan.recurrent_pass_traffic if recurrent else None)
            if plan.qk_norm_kernels and getattr(mixer, "qk_norm", "none") == "rms":
                # per-head q and k norms as their own ops: each reads and writes q or k, partly in fp32
                qk = 2.0 * (mixer.num_heads + mixer.num_kv_heads) * mixer.head_dim * plan.norm_traffic
                small = small + [qk / plan.qk_norm_kernels] * plan.qk_norm_kernels
            if recurrent:
                prefill = phase == "prefill"
                core_kernels = plan.recurrent_prefill_kernels if prefill else 1
                library_host += count * (plan.host_recurrent_prefill_call_s if prefill
                                         else plan.host_recurrent_decode_call_s)
            else:
                library_host += count * plan.host_attention_call_s
        add("elementwise", count * _elementwise_time(small, tokens, hw, p, plan))
        kernels += count * (gemm_kernels + core_kernels + len(small))
    for block, count in spec.ffn_groups:
        cost = ffn_family.cost(block, d, tokens, p)
        rows = tokens
        if isinstance(block, ffn_family.MoEFFN):
            touched = ffn_family.expected_experts_touched(block.num_experts, block.top_k, tokens)
            rows = tokens * block.top_k / np.maximum(touched, 1.0)  # rows per expert GEMM
        ffn_kernels = 3 if isinstance(block, ffn_family.MoEFFN) or block.activation in ("swiglu", "geglu") else 2
        if plan is not None and plan.fused_projections and not isinstance(block, ffn_family.MoEFFN):
            ffn_kernels = 2  # gate+up as one GEMM, then down; MoE: router, fused w13, w2 (3 already)
        mats, per_token = ffn_family.gemm_matrices(block, d)
        # routed experts stored apart (gpt-oss's MXFP4) run at their own type's rate; the block's GEMMs with them
        rate = p.model_copy(update={"weights": p.expert_dtype}) if isinstance(block, ffn_family.MoEFFN) \
            and p.experts is not None else p
        add("gemm", count * (gemm_time(cost, hw, rate, rows, gemm_depth_factor(hw, mats, per_token))
                             + ffn_kernels * hw.efficiency.matmul_latency_s))
        small = elementwise.ffn_kernels(block, d)
        if plan is not None:
            small = _expand(small, plan, plan.norm_kernels, plan.norm_traffic, plan.activation_kernels)
        add("elementwise", count * _elementwise_time(small, tokens, hw, p, plan))
        kernels += count * (ffn_kernels + len(small))
    final = elementwise.final_norm_kernels(d)
    if plan is not None:
        final = _expand(final, plan, plan.norm_kernels, plan.norm_traffic)
        kernels += len(final) - 1
    add("elementwise", _elementwise_time(final, batch * np.ones_like(n), hw, p, plan))
    head_rows = batch * np.ones_like(n)
    head = gemm_cost(head_rows, [(d, spec.vocab_size)], p.weight_bytes, p.act_bytes)
    add("lm_head", gemm_time(head, hw, p, head_rows, gemm_depth_factor(hw, [(d, spec.vocab_size)])))
    # the gap between consecutive kernels (a graph node's launch in decode, a host launch in prefill)
    add("overhead", kernels * overhead_per_kernel * np.ones_like(n))
    scale = hw.efficiency.published_time_scale
    if np.any(np.asarray(scale) != 1.0):  # a published fit of this device (1 elsewhere: nothing changes)
        by_class = {k: v * scale for k, v in by_class.items()}
    total = sum(by_class.values())
    if plan is not None and plan.host_per_kernel_s > 0:
        # eager PyTorch: the host issues every op; when that takes longer than the GPU's work, the GPU waits
        host = (kernels * plan.host_per_kernel_s + library_host) * np.ones_like(n)
        by_class["host_bound"] = np.maximum(host - total, 0.0)
        total = total + by_class["host_bound"]
    shape = np.broadcast_shapes(np.shape(total), np.shape(n), np.shape(c), np.shape(batch))
    return StepTime(total_s=np.broadcast_to(total, shape).copy(), by_class=by_class)


def decode_step_time(spec: ModelSpec, hw: HardwareProfile, t: ArrayLike, batch: ArrayLike = 1,
                     p: Precision = DEFAULT_PRECISION, cuda_graphs: bool = True,
                     plan: KernelPlan | None = None) -> StepTime:
    """One decode step on one device (vectorised): `batch` sequences at context t each produce one token.
    Kernel classes are timed on the profile's roofline with its efficiency curves (docs/timing.md); this
    is what `estimate` reports as TPOT for a single device."""
    t, batch = as_array(t), as_array(batch)
    overhead: ArrayLike = hw.efficiency.graph_overhead_s if cuda_graphs else hw.efficiency.kernel_overhead_s
    if plan is not None:  # graphs are captured up to a batch size; larger batches launch from the host
        graphed = plan.cuda_graphs & (batch <= plan.max_graph_batch)
        overhead = np.where(graphed, hw.efficiency.graph_overhead_s, hw.efficiency.kernel_overhead_s)
    return _step_time(spec, hw, p, "decode", np.ones_like(t), t, batch, overhead, plan)


def prefill_time(spec: ModelSpec, hw: HardwareProfile, prompt: ArrayLike, cached: ArrayLike = 0,
                 batch: ArrayLike = 1, p: Precision = DEFAULT_PRECISION, chunk_tokens: int = 8192,
                 plan: KernelPlan | None = None) -> StepTime:
    """Prefill of `prompt` new tokens after `cached` ones, in chunks of `chunk_tokens`: the FLOPs and
    cache traffic of the whole prompt (additive over chunks), GEMM efficiency at the chunk's row
    count, weights read again and launch overheads paid once per chunk."""
    prompt, cached, batch = as_array(prompt), as_array(cached), as_array(batch)
    chunks = np.maximum(np.ceil(prompt / chunk_tokens), 1.0)
    whole = _step_time(spec, hw, p, "prefill", prompt, cached, batch, hw.efficiency.kernel_overhead_s, plan)
    one_chunk_rows = np.minimum(prompt, chunk_tokens)
    # GEMM time was priced with the whole prompt's rows; re-price at the chunk's rows
    by_class = dict(whole.by_class)
    eff_whole = _gemm_eff(hw, batch * prompt)
    eff_chunk = _gemm_eff(hw, batch * one_chunk_rows)
    by_class["gemm"] = by_class["gemm"] * eff_whole / eff_chunk
    weights = _weight_read_time(spec, hw, p)
    by_class["weights_per_chunk"] = (chunks - 1.0) * weights * hw.efficiency.published_time_scale
    by_class["overhead"] = by_class["overhead"] * chunks
    total = sum(by_class.values())
    return StepTime(total_s=total, by_class=by_class)


def _weight_read_time(spec: ModelSpec, hw: HardwareProfile, p: Precision) -> float:

    from costsim.families.model_costs import weight_bytes

    return weight_bytes(spec, p) / (hw.bandwidth_bytes_s * hw.efficiency.memory_max)
