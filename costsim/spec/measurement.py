"""The measurement record contract (docs/contracts.md): one JSON object per line of
``measurements/*.jsonl``, written by the bundled microbenchmark and read by calibrate/validate.

Shape fields are required per op; extra fields (p10/p90, flops, achieved_gb_s, variant, ...) are
allowed and kept. A header record (``"record": "header"``) describes the machine.
"""

from __future__ import annotations

import math
from typing import Any

COMMON_FIELDS = ("op", "hardware", "gpu_name", "dtype", "time_s", "source")

SHAPE_FIELDS: dict[str, tuple[str, ...]] = {
    "copy": ("bytes",),
    "gemm": ("m", "n", "k"),
    "attention_prefill": ("batch", "seq_len", "heads", "kv_heads", "head_dim", "causal", "window"),
    "attention_decode": ("batch", "context", "heads", "kv_heads", "head_dim"),
    "linear_prefill": ("variant", "batch", "seq_len", "heads", "value_heads", "head_dim_k", "head_dim_v"),
    "linear_decode": ("variant", "batch", "heads", "value_heads", "head_dim_k", "head_dim_v", "state_dtype"),
    # documented in microbench/NOTES.md: kernel-launch latency, plain and in a CUDA graph
    "launch": ("variant",),
    # documented in microbench/NOTES.md: a whole decode step or prefill of a synthetic model (model_step.py)
    "model_step": ("phase", "model", "batch", "context", "seq_len"),
    # documented in microbench/NOTES.md: one NCCL collective over `ranks` GPUs of one node (collectives.py)
    "collective": ("collective", "ranks", "bytes"),
    # documented in microbench/NOTES.md: the host's time to issue one eager call or step part (host_cost.py,
    # model_step.py --host-blocks); not a GPU time, so validate does not predict it
    "host_call": ("call", "kernels_per_call"),
}

KNOWN_SOURCES = ("microbench", "cublas", "torch", "torch-sdpa-flash", "torch-sdpa-cudnn", "torch-sdpa-math",
                 "torch-sdpa-efficient", "torch-flex", "fla", "flashmla", "torch-model-step", "nccl", "gloo",
                 "torch-host-cost")
LINEAR_VARIANTS = ("lightning", "gla", "gdn", "kda", "mamba2")


def record_problem(record: dict[str, Any]) -> str | None:
    if record.get("record") == "header":
        return None if isinstance(record.get("gpu_name"), str) else "header without gpu_name"
    missing = [f for f in COMMON_FIELDS if f not in record]
    if missing:
        return f"missing {', '.join(missing)}"
    op = record["op"]
    if op not in SHAPE_FIELDS:
        return f"unknown op '{op}'"
    missing = [f for f in SHAPE_FIELDS[op] if f not in record]
    if missing:
        return f"op {op} missing {', '.join(missing)}"
    t = record["time_s"]
    if isinstance(t, bool) or not isinstance(t, int | float) or not math.isfinite(t) or t <= 0:
        return f"time_s must be a positive number, got {t!r}"
    if record["source"] not in KNOWN_SOURCES:
        return f"source '{record['source']}' is not one of {', '.join(KNOWN_SOURCES)} (document new ones)"
    if op == "model_step" and record["phase"] not in ("decode", "prefill", "mixed"):
        return f"phase '{record['phase']}' is not one of decode, prefill, mixed"
    if op == "model_step" and record["phase"] == "mixed" and "prefill_tokens" not in record:
        return "a mixed model_step (decodes plus one prefill chunk) needs prefill_tokens"
    if op.startswith("linear_") and record["variant"] not in LINEAR_VARIANTS:
        return f"variant '{record['variant']}' is not one of {', '.join(LINEAR_VARIANTS)}"
    for field in SHAPE_FIELDS[op]:
        value = record[field]
        if isinstance(value, int | float) and not isinstance(value, bool) and value < 0:
            return f"{field} must be >= 0, got {value}"
    return None
