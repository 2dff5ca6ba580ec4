"""`costsim validate`: predict every measured kernel with the timing model and report the error.

Each record of ``measurements/*.jsonl`` (format in docs/contracts.md) is turned into the FLOPs and
bytes costsim counts for that kernel, then timed with the same roofline per kernel class the
engine uses (``engine/timing.py``) on the hardware profile the record names. The error is
(predicted - measured) / measured, signed.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from costsim.engine.timing import _gemm_eff, _kernel_time, _saturating, gemm_depth_factor
from costsim.errors import CostsimError
from costsim.families.cost import SOFTMAX_FLOPS_PER_SCORE, Cost, full_pairs_before, window_pairs_before
from costsim.families.kernel_tiles import decode_query_rows, flash2_split_schedule
from costsim.inputs.hardware import load_hardware
from costsim.spec.dtypes import DTYPE_BYTES, Precision
from costsim.spec.hardware import HardwareProfile

BF16 = 2.0
FP32 = 4.0


def _precision(dtype: str) -> Precision:
    return Precision(weights=dtype if dtype in DTYPE_BYTES else "bf16")


def _copy(r: dict, hw: HardwareProfile) -> tuple[Cost, float]:
    moved = float(r["bytes"]) * (1.0 if r.get("mode") == "read" else 2.0)
    return Cost.of(bytes_activations=moved), 1.0


def _gemm(r: dict, hw: HardwareProfile) -> tuple[Cost, float]:
    m, n, k = float(r["m"]), float(r["n"]), float(r["k"])
    b_in = DTYPE_BYTES.get(r["dtype"], BF16)
    cost = Cost.of(flops_matrix=2 * m * n * k, bytes_weights=n * k * b_in,
                   bytes_activations=m * k * b_in + m * n * BF16)
    return cost, float(_gemm_eff(hw, np.float64(m)) * gemm_depth_factor(hw, [(k, n)]))


def _attention_decode(r: dict, hw: HardwareProfile) -> tuple[Cost, float]:
    b, t, h = float(r["batch"]), float(r["context"]), float(r["heads"])
    if r.get("kv_lora_rank"):
        latent, rope = float(r["kv_lora_rank"]), float(r.get("rope_dim", 64))
        rows = decode_query_rows(r.get("source", ""), b, h, 1.0, hw.compute_units)
        flops = 2 * rows * (2 * latent + rope) * t * b
        cache = (latent + rope) * BF16 * t * b
        io = 2 * h * (latent + rope) * BF16 * b
    else:
        d, kv = float(r["head_dim"]), float(r["kv_heads"])
        # the tensor cores' work includes the padding of the query tile (families/kernel_tiles.py)
        rows = decode_query_rows(r.get("source", ""), b, h, kv, hw.compute_units)
        flops = 4 * kv * rows * d * t * b
        cache = 2 * kv * d * BF16 * t * b
        io = 2 * h * d * BF16 * b
    cost = Cost.of(flops_matrix=flops, flops_vector=SOFTMAX_FLOPS_PER_SCORE * h * t * b, bytes_cache_read=cache,
                   bytes_activations=io)
    return cost, hw.efficiency.attention_max


def flash2_schedule(r: dict, hw: HardwareProfile) -> tuple[int, int, int] | None:
    """FlashAttention-2's split-KV schedule for a softmax decode record (kernel_tiles.flash2_split_schedule);
    None where it runs unsplit or the profile lacks the SM count."""
    if r.get("kv_lora_rank") or hw.compute_units is None:
        return None
    return flash2_split_schedule(float(r["batch"]), float(r["kv_heads"]), r["heads"] / r["kv_heads"],
                                 float(r["context"]), float(r["head_dim"]), hw.compute_units)


def _split_kv_floor(r: dict, hw: HardwareProfile) -> float:
    """FlashAttention-2's split-KV decode at few (sequence, KV head) pairs: fixed time, plus the combine's
    time per split, plus a CTA's time per key block it streams (kernel_tiles.flash2_split_schedule); 0
    elsewhere, and wherever the profile's table has no split-KV terms."""
    e = hw.efficiency
    if r.get("source") != "torch-sdpa-flash":
        return 0.0
    if not (e.splitkv_fixed_s or e.splitkv_per_split_s or e.splitkv_per_block_s):
        return 0.0
    schedule = flash2_schedule(r, hw)
    if schedule is None:
        return 0.0
    splits, blocks_per_split, waves = schedule
    return e.splitkv_fixed_s + e.splitkv_per_split_s * splits + e.splitkv_per_block_s * blocks_per_split * waves


def _prefill_pairs(r: dict) -> float:
    n = np.float64(r["seq_len"])
    if r.get("blocks_selected") and r.get("flops"):
        return float(r["flops"]) / (4.0 * r["heads"] * r["head_dim"] * r["batch"])  # the kernel's own count
    if not r.get("causal", True):
        return float(n * n)
    if r.get("window"):
        return float(window_pairs_before(n, float(r["window"])))
    return float(full_pairs_before(n))


def _attention_prefill(r: dict, hw: HardwareProfile) -> tuple[Cost, float]:
    b, n, h, d, kv = (float(r[k]) for k in ("batch", "seq_len", "heads", "head_dim", "kv_heads"))
    pairs = _prefill_pairs(r)
    cost = Cost.of(flops_matrix=4 * h * d * pairs * b, flops_vector=SOFTMAX_FLOPS_PER_SCORE * h * pairs * b,
                   bytes_activations=b * n * (2 * h * d + 2 * kv * d) * BF16)
    # the curve's size is the kernel's work per head, all sequences of the batch together, as the engine
    # prices it (a batch of short prompts fills the GPU like one long one)
    eff = _saturating(np.float64(pairs * b), hw.efficiency.attention_max, hw.efficiency.attention_half_pairs)
    return cost, float(eff)


def _state_elements(r: dict) -> float:
    return float(r["value_heads"]) * float(r["head_dim_k"]) * float(r["head_dim_v"])


def _linear_decode(r: dict, hw: HardwareProfile) -> tuple[Cost, float]:
    b = float(r["batch"])
    per_element = 7.0 if r["variant"] in ("gdn", "kda") else 5.0
    state = _state_elements(r) * DTYPE_BYTES.get(r.get("state_dtype", "fp32"), FP32)
    io = (2 * float(r["heads"]) * float(r["head_dim_k"]) + 2 * float(r["value_heads"]) * float(r["head_dim_v"])) * BF16
    cost = Cost.of(flops_vector=per_element * _state_elements(r) * b, bytes_cache_read=state * b,
                   bytes_cache_write=state * b, bytes_activations=io * b)
    return cost, hw.efficiency.vector_max  # no matrix work in a one-token state update


def _linear_prefill(r: dict, hw: HardwareProfile) -> tuple[Cost, float]:
    b, n = float(r["batch"]), float(r["seq_len"])
    hv, dk, dv = float(r["value_heads"]), float(r["head_dim_k"]), float(r["head_dim_v"])
    c = float(r.get("chunk", 64))
    if r["variant"] in ("gdn", "kda"):
        per_token = hv * (6 * dk * dv + 6 * c * dk + 4 * c * dv)
    else:
        per_token = hv * (4 * dk * dv + 2 * c * (dk + dv))
    io = (2 * float(r["heads"]) * dk + 2 * hv * dv) * BF16
    state = hv * dk * dv * FP32
    cost = Cost.of(flops_matrix=per_token * n * b, bytes_activations=io * n * b, bytes_cache_write=state * b)
    e = hw.efficiency
    return cost, float(_saturating(np.float64(per_token * n * b), e.scan_max, e.scan_half_flops))


PREDICTORS = {
    "copy": _copy,
    "gemm": _gemm,
    "attention_decode": _attention_decode,
    "attention_prefill": _attention_prefill,
    "linear_decode": _linear_decode,
    "linear_prefill": _linear_prefill,
}


PER_FAMILY_OPS = ("attention_decode", "linear_prefill", "linear_decode")


def implementation_key(r: dict[str, Any]) -> str:
    """How fitted per-implementation efficiencies are stored: '<source>/<op>', plus the family where one
    implementation runs different kernels per family (MLA vs GQA decode, GDN vs KDA scans), and for
    softmax decode the head dim, which selects the kernel too (cuDNN 9.19 on an H200 streams the cache at
    about 0.75 of its head-dim-128 rate at 256): 'fla/linear_prefill/kda', 'microbench/attention_decode/mla',
    'torch-sdpa-cudnn/attention_decode/gqa_d256', 'torch-sdpa-cudnn/attention_prefill'."""
    key = f"{r.get('source', '')}/{r['op']}"
    return f"{key}/{kernel_family(r)}" if r["op"] in PER_FAMILY_OPS else key


def kernel_family(r: dict[str, Any]) -> str:
    """The family, with the head dim appended for softmax decode (its kernels are built per head dim)."""
    family = family_of(r)
    if r["op"] == "attention_decode" and family in ("gqa", "mha") and r.get("head_dim"):
        return f"{family}_d{int(r['head_dim'])}"
    return family


# A record's step style -> the engine profile whose kernel list it runs (microbench/model_step.py --style)
STEP_STYLE_ENGINE = {"engine": "vllm", "eager": "pytorch-eager"}
# the harness's attention kernel -> the fitted table that prices it
KERNEL_TABLE = {"torch-sdpa-cudnn": "torch-sdpa-cudnn", "torch-sdpa-flash": "torch-sdpa-flash"}


def _engine_step(r: dict[str, Any], hw: HardwareProfile, engine: Any = None) -> float:
    """A step timed through an engine profile (records that name a step_style, and mixed steps): the
    profile's kernel list, with the attention table of the kernel the harness ran; `engine` replaces the
    style's bundled profile (a fit trying values)."""
    from costsim.inputs.engines import load_engine
    from costsim.serving.steps import StepModel
    from costsim.spec.deployment import Deployment
    from costsim.spec.layout import Layout

    engine = engine or load_engine(STEP_STYLE_ENGINE[r.get("step_style", "engine")])
    # the harness times the forward alone (graph replay or the eager call): no scheduler, sampler or HTTP
    engine = engine.model_copy(update={"overheads": engine.overheads.model_copy(
        update={"step_s": 0.0, "per_sequence_s": 0.0, "ttft_floor_s": 0.0})})
    table = KERNEL_TABLE.get(str(r.get("attention_kernel", "")))
    if table is not None:
        attention = engine.attention.model_copy(update={"decode_table": table, "prefill_table": table})
        engine = engine.model_copy(update={"attention": attention})
    p = _precision(r.get("dtype", "bf16"))
    layout = Layout(**r["layout"]) if r.get("layout") else Layout()
    model = StepModel(model_for_record(r), hw, Deployment(weights=p.weights), layout, engine)
    if r["phase"] == "decode":
        return float(model.decode(float(r["context"]), float(r["batch"])))
    if r["phase"] == "mixed":
        return float(model.mixed(float(r["context"]), float(r["batch"]), float(r["prefill_tokens"])))
    return float(model.prefill(float(r["seq_len"]), float(r.get("context", 0))))


def _model_step(r: dict[str, Any], hw: HardwareProfile, engine: Any = None) -> float:
    """A whole decode step or prefill of a model, as `costsim estimate` times it (top-level profile
    efficiencies, no per-implementation tables: the engine's own assumptions are what is checked);
    records with a step_style, and mixed steps, through their engine profile."""
    from costsim.engine.timing import decode_step_time, prefill_time

    if "step_style" in r or r["phase"] == "mixed":
        return _engine_step(r, hw, engine)
    spec = model_for_record(r)
    p = _precision(r.get("dtype", "bf16"))
    if r.get("layout"):  # a tensor-parallel step over several GPUs: serving/layouts.py, comm included
        from costsim.serving.layouts import Replica
        from costsim.spec.deployment import Deployment
        from costsim.spec.layout import Layout

        sh = Replica(spec, hw, Deployment(weights=p.weights), Layout(**r["layout"]), overlap=True)
        if r["phase"] == "decode":
            return float(sh.tpot(np.asarray(float(r["context"])), np.asarray(float(r["batch"]))))
        return float(sh.ttft(np.asarray(float(r["seq_len"])), float(r.get("context", 0)), float(r["batch"])))
    if r["phase"] == "decode":
        return float(decode_step_time(spec, hw, r["context"], r["batch"], p,
                                      cuda_graphs=bool(r.get("cuda_graph", True))).total_s)
    return float(prefill_time(spec, hw, r["seq_len"], r.get("context", 0), r["batch"], p,
                              chunk_tokens=int(r["seq_len"])).total_s)


def model_for_record(r: dict[str, Any]):
    """The model a model_step record names: a preset, or a model file relative to microbench/."""
    from costsim.inputs.data import data_dir
    from costsim.inputs.models import load_model, preset_names

    name = str(r["model"])
    if name in preset_names():
        return load_model(name)
    path = data_dir("microbench") / name
    if not path.is_file():
        raise CostsimError(f"model_step record names model '{name}', which is neither a preset nor a file under "
                           f"{data_dir('microbench')}; fix the record's 'model' field")
    return load_model(str(path))


def _collective(r: dict[str, Any], hw: HardwareProfile) -> float:
    """One collective as costsim/engine/comm.py prices it (the group on one node's links)."""
    from costsim.engine import comm

    fn = {"all_reduce": comm.all_reduce, "all_gather": comm.all_gather, "reduce_scatter": comm.reduce_scatter,
          "all_to_all": comm.all_to_all}.get(r["collective"])
    if fn is None:
        raise CostsimError(f"collective record: unknown collective '{r['collective']}'; use all_reduce, all_gather, "
                           "reduce_scatter or all_to_all")
    ranks = int(r["ranks"])
    # several nodes: the group spans more than any scale-up domain, so the network carries it
    span = ranks if int(r.get("nodes", 1)) == 1 else 10**9
    return float(fn(hw, ranks, float(r["bytes"]), span=span))


def predict_record(r: dict[str, Any], hw: HardwareProfile, engine: Any = None) -> float | None:
    """Predicted seconds for one measured kernel; None for ops the engine does not model (launch). `engine`
    (an EngineProfile) times the model steps that go through an engine profile in place of their style's."""
    if r["op"] == "model_step":
        return _model_step(r, hw, engine)
    if r["op"] == "collective":
        return _collective(r, hw)
    if r["op"] == "launch":
        e = hw.efficiency
        return e.graph_overhead_s if r.get("variant") == "graph" else e.kernel_overhead_s
    predictor = PREDICTORS.get(r["op"])
    if predictor is None:
        return None
    eff = hw.efficiency.for_source(implementation_key(r))  # itself where no table was fitted
    if r["op"] == "linear_decode":  # recurrent state updates follow their own curve where fitted
        eff = eff.for_state_updates()
    if eff is not hw.efficiency:
        hw = hw.model_copy(update={"efficiency": eff})
    cost, matrix_eff = predictor(r, hw)
    gemm = r["op"] == "gemm"
    exponent = hw.efficiency.matmul_roofline_exponent if gemm else None
    seconds = _kernel_time(cost, hw, _precision(r.get("dtype", "bf16")), matrix_eff, exponent)
    if r["op"] == "attention_decode":
        seconds = max(float(seconds), _split_kv_floor(r, hw))
    latency = hw.efficiency.matmul_latency_s if gemm else 0.0
    # measured times are GPU time of a queued kernel: one graph-level launch gap, not a host launch
    return float(seconds) + hw.efficiency.graph_overhead_s + latency


def family_of(r: dict[str, Any]) -> str:
    op = r["op"]
    if op == "model_step":
        return f"{r['phase']}:{r.get('model_name', r['model'])}"
    if op == "collective":
        return f"{r['collective']}:{r['ranks']}"
    if op.startswith("linear_"):
        return r["variant"]
    if op == "attention_decode":
        if r.get("kv_lora_rank"):
            return "mla"
        return "mha" if r["heads"] == r["kv_heads"] else "gqa"
    if op == "attention_prefill":
        if r.get("blocks_selected"):
            return "block_sparse"
        return "sliding" if r.get("window") else ("causal" if r.get("causal", True) else "full")
    return op


def _stats(errors: list[float]) -> dict[str, float]:
    a = np.abs(np.asarray(errors))
    return {"count": int(a.size), "median_abs": float(np.median(a)), "p90_abs": float(np.percentile(a, 90)),
            "max_abs": float(a.max()), "median_signed": float(np.median(errors))}


def validate(records: list[dict[str, Any]], hardware: str | None = None) -> dict[str, Any]:
    profiles: dict[str, HardwareProfile] = {}
    out = []
    for r in records:
        if r.get("record") == "header":
            continue
        name = hardware or r["hardware"]
        if name not in profiles:
            try:
                profiles[name] = load_hardware(name)
            except CostsimError as exc:
                raise CostsimError(f"{exc}; pass --hardware to choose a profile for these records") from None
        predicted = predict_record(r, profiles[name])
        if predicted is None:
            continue
        out.append({**r, "predicted_s": predicted, "error": (predicted - r["time_s"]) / r["time_s"],
                    "family": family_of(r)})
    if not out:
        raise CostsimError("validate: no records to predict; pass measurement files written by the microbenchmark")
    summary: dict[str, Any] = {"all": _stats([x["error"] for x in out])}
    labels = {
        "op": lambda x: x["op"],
        "family": lambda x: f"{x['op']}/{x['family']}",
        "source": lambda x: x["source"],
        "hardware": lambda x: x["hardware"],
        "implementation": lambda x: f"{x['source']}: {x['op']}/{kernel_family(x)}",
    }
    for key, label_of in labels.items():
        groups: dict[str, list[float]] = {}
        for x in out:
            label = label_of(x)
            groups.setdefault(label, []).append(x["error"])
        summary[f"by_{key}"] = {k: _stats(v) for k, v in sorted(groups.items())}
    return {"records": out, "summary": summary}
