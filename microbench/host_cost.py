"""Host time to issue one eager PyTorch call: what an un-graphed step pays per op before the GPU sees it.

    python3 microbench/host_cost.py [--quick] [--out FILE.jsonl] [--log FILE] [--deadline S] [--only CALLS]

An eager step (plain PyTorch, HF transformers) issues every op from Python; when issuing takes longer than
the GPU's work, the GPU waits and the step takes the host's time. This times that issue cost per call kind
at the shapes of the eager whole-step records (Llama-3.1-8B, and the Qwen3-Next-like hybrid with Gated
DeltaNet layers): blocks of `CALLS_PER_BLOCK` back-to-back calls between perf_counter reads, the device
synchronised before each block and after it, so the queue never fills (the host never waits on the GPU)
and the time is the host's alone. The kernels one call launches are counted under the profiler, so a
record gives host seconds per call and per kernel. Each call is first checked against a reference where
it computes something (the attention backends against SDPA's math backend, fla's Gated DeltaNet against
its naive recurrence in float32).

Records: op "host_call", `call` (the call kind), `kernels_per_call`, `time_s` (median host seconds per
call), `p10_s`, `p90_s`, `blocks`, `source` "torch-host-cost", with the header of torch_env.gpu_header.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from contextlib import nullcontext

import torch
import torch.nn.functional as F
from torch_env import (
    common_parser,
    gpu_header,
    hardware_slug,
    host_cpu,
    host_seconds_per_call,
    kernels_launched,
    write_log,
)

DEV = "cuda"
BF16 = torch.bfloat16
CALLS_PER_BLOCK = 20
T0 = time.time()
LOG = None


def log(msg: str) -> None:
    write_log(msg, T0, LOG)


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.float(), b.float()
    return float((a - b).norm() / b.norm().clamp_min(1e-30))


def hf_rms_norm(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """LlamaRMSNorm.forward, as the eager step runs it."""
    dtype = x.dtype
    x = x.to(torch.float32)
    variance = x.pow(2).mean(-1, keepdim=True)
    x = x * torch.rsqrt(variance + 1e-6)
    return w * x.to(dtype)


def sdpa_call(backend, q, k, v, causal):
    def run():
        return F.scaled_dot_product_attention(q, k, v, is_causal=causal, enable_gqa=k.shape[1] != q.shape[1])
    return run


def attention_calls() -> dict:
    """SDPA at the eager records' shapes: Llama (32 query, 8 KV heads, dim 128) and Qwen3-Next's gated
    attention (16, 2, dim 256); decode at batch 8 and context 2,048, prefill of 1,024 tokens."""
    from torch.nn.attention import SDPBackend

    calls = {}
    for model, (H, Hkv, D) in (("llama", (32, 8, 128)), ("qwen", (16, 2, 256))):
        for phase, (B, S, ctx) in (("decode", (8, 1, 2048)), ("prefill", (1, 1024, 1024))):
            q = torch.randn(B, H, S, D, device=DEV, dtype=BF16)
            k = torch.randn(B, Hkv, ctx, D, device=DEV, dtype=BF16)
            v = torch.randn(B, Hkv, ctx, D, device=DEV, dtype=BF16)
            for label, backend in (("cudnn", SDPBackend.CUDNN_ATTENTION), ("flash", SDPBackend.FLASH_ATTENTION)):
                calls[f"sdpa_{label}_{phase}_{model}"] = (sdpa_call(backend, q, k, v, phase == "prefill"),
                                                          backend, (q, k, v, phase == "prefill"))
    return calls


def gdn_inputs(B: int, S: int):
    """Qwen3-Next's Gated DeltaNet heads after HF repeats q, k to the 32 value heads (dims 128)."""
    H, Dk, Dv = 32, 128, 128
    q = torch.randn(B, S, H, Dk, device=DEV, dtype=BF16)
    k = torch.randn(B, S, H, Dk, device=DEV, dtype=BF16)
    v = torch.randn(B, S, H, Dv, device=DEV, dtype=BF16)
    g = F.logsigmoid(torch.randn(B, S, H, device=DEV, dtype=torch.float32))
    beta = torch.rand(B, S, H, device=DEV, dtype=BF16).sigmoid()
    state = torch.randn(B, H, Dk, Dv, device=DEV, dtype=torch.float32) * 0.01
    return q, k, v, g, beta, state


def gdn_reference(q, k, v, g, beta, state):
    """The gated delta rule token by token in float32 (q, k l2-normalised, as use_qk_l2norm_in_kernel)."""
    q, k = F.normalize(q.float(), dim=-1), F.normalize(k.float(), dim=-1)
    v, beta, S = v.float(), beta.float(), state.clone()
    scale = q.shape[-1] ** -0.5
    out = []
    for t in range(q.shape[1]):
        S = S * g[:, t].exp()[..., None, None]
        kt, vt = k[:, t], v[:, t]
        pred = torch.einsum("bhk,bhkv->bhv", kt, S)
        S = S + torch.einsum("bhk,bhv->bhkv", kt, (vt - pred) * beta[:, t][..., None])
        out.append(torch.einsum("bhk,bhkv->bhv", q[:, t] * scale, S))
    return torch.stack(out, 1)


def recurrent_calls() -> dict:
    from fla.ops.gated_delta_rule import chunk_gated_delta_rule, fused_recurrent_gated_delta_rule

    calls = {}
    dq, dk, dv, dg, db, ds = gdn_inputs(8, 1)
    calls["fla_gdn_decode"] = (
        lambda: fused_recurrent_gated_delta_rule(dq, dk, dv, g=dg, beta=db, initial_state=ds,
                                                 output_final_state=True, use_qk_l2norm_in_kernel=True),
        None, (dq, dk, dv, dg, db, ds))
    pq, pk, pv, pg, pb, _ = gdn_inputs(1, 1024)
    calls["fla_gdn_prefill"] = (
        lambda: chunk_gated_delta_rule(pq, pk, pv, g=pg, beta=pb, initial_state=None, output_final_state=True,
                                       use_qk_l2norm_in_kernel=True),
        None, (pq, pk, pv, pg, pb, None))
    return calls


def aten_calls() -> dict:
    """Plain ATen ops an eager layer is made of, at a decode step's size (batch 8, hidden 4,096)."""
    x = torch.randn(8, 1, 4096, device=DEV, dtype=BF16)
    w = torch.ones(4096, device=DEV, dtype=BF16)
    wq = torch.randn(4096, 4096, device=DEV, dtype=BF16) * 0.01
    heads = torch.randn(8, 1, 16, 128, device=DEV, dtype=BF16)
    conv_in = torch.randn(8, 8192, 4, device=DEV, dtype=BF16)
    conv_w = torch.randn(8192, 1, 4, device=DEV, dtype=BF16)
    return {
        "aten_add": (lambda: x + x, None, None),
        "aten_linear": (lambda: F.linear(x, wq), None, None),
        "aten_rms_norm": (lambda: hf_rms_norm(x, w), None, None),
        "aten_cat": (lambda: torch.cat((x, x), dim=-1), None, None),
        "aten_repeat_interleave": (lambda: heads.repeat_interleave(2, dim=2), None, None),
        "aten_conv1d_depthwise": (lambda: F.conv1d(conv_in, conv_w, None, padding=0, groups=8192), None, None),
        "aten_softplus_float": (lambda: F.softplus(x.float() + 1.0), None, None),
    }


def check(name: str, fn, backend, inputs) -> tuple[float, bool] | None:
    """The call against a reference: SDPA backends against SDPA's math backend; fla's Gated DeltaNet against
    the float32 recurrence (prefill on its first 64 tokens' worth of output would need the full sequence,
    so the whole 1,024-token output is compared). Plain ATen ops are their own reference (None)."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    if name.startswith("sdpa_"):
        q, k, v, causal = inputs
        with sdpa_kernel([SDPBackend.MATH]):
            ref = F.scaled_dot_product_attention(q.float(), k.float(), v.float(), is_causal=causal,
                                                 enable_gqa=k.shape[1] != q.shape[1])
        with sdpa_kernel([backend]):
            out = fn()
        err = rel_err(out, ref)
        return err, err < 2e-2
    if name.startswith("fla_"):
        q, k, v, g, beta, state = inputs
        out, _ = fn()
        init = state if state is not None else torch.zeros(q.shape[0], q.shape[2], q.shape[3], v.shape[3],
                                                           device=DEV, dtype=torch.float32)
        ref = gdn_reference(q, k, v, g, beta, init)
        err = rel_err(out, ref)
        return err, err < 3e-2
    return None


def main() -> int:
    from torch.nn.attention import sdpa_kernel

    global LOG
    calls_all = ["aten", "attention", "recurrent"]
    ap = common_parser(__doc__, 300.0, calls_all)
    args = ap.parse_args()
    if args.log:
        LOG = open(args.log, "w")  # noqa: SIM115  (open for the whole run)
    out = sys.stdout if args.out == "-" else open(args.out, "w")  # noqa: SIM115
    gpu = torch.cuda.get_device_name(0)
    hw = hardware_slug(gpu)
    header = gpu_header(gpu, hw, sys.argv, args.quick, calls_per_block=CALLS_PER_BLOCK, host_cpu=host_cpu())
    out.write(json.dumps(header) + "\n")
    log(json.dumps(header))
    deadline = args.deadline or (90.0 if args.quick else 300.0)
    blocks = 10 if args.quick else 40
    groups = args.only.split(",")
    calls: dict = {}
    torch.manual_seed(0)
    with torch.inference_mode():
        if "aten" in groups:
            calls.update(aten_calls())
        if "attention" in groups:
            calls.update(attention_calls())
        if "recurrent" in groups:
            calls.update(recurrent_calls())
        failed = 0
        for name, (fn, backend, inputs) in calls.items():
            if time.time() - T0 > deadline:
                log(f"deadline reached; {name} and later calls skipped")
                break
            try:
                checked = check(name, fn, backend, inputs)
                if checked is not None:
                    err, ok = checked
                    failed += not ok
                    log(f"CHECK {name}: rel_err {err:.3e} {'PASS' if ok else 'FAIL'}")
                    if not ok:
                        continue
                # the backend pinned once around the timed calls, as an eager step pins it once
                with sdpa_kernel([backend]) if backend is not None else nullcontext():
                    kernels = kernels_launched(fn)
                    ts = host_seconds_per_call(fn, blocks, CALLS_PER_BLOCK)
            except Exception as exc:  # a backend that refuses a shape is reported, not fatal
                log(f"{name}: {str(exc).splitlines()[0][:160]}")
                continue
            rec = {"op": "host_call", "call": name, "kernels_per_call": kernels, "hardware": hw, "gpu_name": gpu,
                   "dtype": "bf16", "source": "torch-host-cost", "time_s": statistics.median(ts),
                   "p10_s": ts[len(ts) // 10], "p90_s": ts[(9 * len(ts)) // 10], "blocks": len(ts),
                   "calls_per_block": CALLS_PER_BLOCK}
            out.write(json.dumps(rec) + "\n")
            out.flush()
            log(f"  {name:28s} {rec['time_s'] * 1e6:8.1f} us/call (p10 {rec['p10_s'] * 1e6:.1f}, p90 "
                f"{rec['p90_s'] * 1e6:.1f}), {kernels} kernels, {rec['time_s'] * 1e6 / max(kernels, 1):.1f} us/kernel")
    log(f"done: {len(calls)} calls, {failed} checks failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
