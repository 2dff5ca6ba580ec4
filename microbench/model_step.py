#!/usr/bin/env python3
"""End-to-end check (issue 5 item 4): whole synthetic model steps, timed with CUDA graphs.

Builds models with random bf16 weights of real shapes (microbench/model_shapes.py) and times one
decode step (batch B at context C, one new token each, KV/state cache of that size) and one prefill
(B prompts of S tokens) per point, each captured once as a CUDA graph and replayed. The kernels are
the ones a serving engine runs: cuBLAS GEMMs (QKV and gate/up fused), PyTorch SDPA (cuDNN or flash,
whichever is faster for the model and phase) for softmax attention, FlexAttention for a sliding window
past its length, flash-linear-attention for Gated DeltaNet, FlashMLA for MLA decode where it is built,
and torch.compile-fused elementwise work (residual+RMSNorm, RoPE, SiLU*mul), so the comparison with
`costsim` tests how it composes a step from kernel classes, not how good a naive PyTorch model is.

`--style eager` times the other end instead: a plain PyTorch / HF-transformers eager step (separate q, k,
v, o and gate, up, down projections through F.linear on (out, in) weights; HF's RMSNorm, rotate_half rotary
and SiLU-then-multiply as separate ops; residual adds as separate ops; SDPA for attention; no torch.compile
and no CUDA graph), timed with CUDA events around the eager call after a device sync, so the host's launch
cost is part of each record (`step_style: eager`, `cuda_graph: false`). `--phases mixed` times continuous-
batching steps: one prefill chunk of P tokens (a fresh request) and B decodes at context C in one forward,
GEMMs and elementwise work once over the P + B rows, the chunk's causal attention and the decodes' cached
attention as two calls inside the step (as an engine's varlen kernels would split them).

Known departure: without FlashMLA, DeepSeek-like MLA decode runs the absorbed form with batched GEMMs
and a separate softmax (or a Triton kernel from batch 16), which the engine does not price; the record
says so (`attention_kernel`).

    python3 microbench/model_step.py [--quick] [--out FILE.jsonl] [--log FILE] [--deadline S]
                                     [--only llama-3.1-8b,qwen3-next-dense-ffn,deepseek-v3-mla-16l,mistral-7b-v0.1]
                                     [--style engine|eager] [--phases decode,prefill,mixed]
                                     [--decode-points 1x8192,...] [--prefill-points 1x2048,...]
                                     [--mixed-points 512x8x2048,...]

Records: op `model_step` (fields in microbench/NOTES.md). Exit 4 if a check failed, 3 if a model
crashed, else 0.
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from model_shapes import MODELS
from torch_env import (
    common_parser,
    gpu_header,
    hardware_slug,
    host_cpu,
    host_seconds_per_call,
    kernels_launched,
    write_log,
)

DT = torch.bfloat16
EPS = 1e-6
# Logits of a whole random-weight model in bf16 against the same model in fp32-math attention and
# unfused elementwise ops: rounding differences compound through 16-48 layers (2-3% seen on 32-layer
# Llama); a wrong kernel or layout gives O(1). Each kernel alone is checked at 1e-2/2e-2 in torch_kernels.py.
STEP_BOUND = 0.1
DEV = "cuda"  # tests of the script's shapes on a CPU set this


class Run:
    quick = False
    out = None
    logf = None
    t0 = 0.0
    deadline = 600.0
    model_end = 0.0
    gpu_name = ""
    hardware = ""
    count = 0
    fused = True
    tp = 1  # tensor-parallel ranks (torchrun); rank 0 writes the records
    rank = 0
    mla_triton = False  # fused MLA decode kernel (mla_decode.py) once it passes its check
    mla_flash = False  # FlashMLA's decode kernel (flashmla_decode.py) once it passes its check
    mla_pad = 8  # MLA cache rounded up to this many tokens (64 where FlashMLA's pages need it)
    host_blocks = False  # --host-blocks: time the host's issue of each part of an eager step
    pin_cpu: int | None = None  # --pin-cpu: the one core an eager run is held to
    profile_all = False  # profile every point, not only the first of each phase (to attribute a miss)
    profile_top = 12  # kernels listed per profiled point
    attention = "auto"  # or one SDPA backend's source name (--attention)
    phases = frozenset({"decode", "prefill"})
    style = "engine"  # or "eager" (--style): the plain PyTorch / HF-transformers step, no CUDA graph

    def __init__(self) -> None:
        self.checks: list = []
        self.errors: list = []
        # phase -> [(batch, n)] or, for mixed, [(prefill_tokens, batch, context)], overriding model_shapes.py
        self.points: dict = {}


R = Run()
# Below this batch the batched GEMMs beat mla_decode.py's kernel on an H200 (whole step 6.31 vs 6.47 ms at
# batch 1 and context 4096, 6.89 vs 7.16 at batch 8), from 32 the fused kernel wins (9.28 vs 9.53 ms, the
# latter from the earlier H200 run in git history): measurements/h200-model-step.log and
# h200-model-step-triton-mla-all-batches.log, 2026-11-28
MLA_TRITON_MIN_BATCH = 16


# --phases mixed: (prefill chunk tokens, decodes, their context), for softmax-attention models (--mixed-points)
MIXED_POINTS = [(512, 8, 2048), (512, 64, 2048), (512, 256, 2048), (2048, 8, 2048), (2048, 64, 2048),
                (2048, 256, 2048)]


def point_weight(point) -> int:
    """How heavy a (phase, batch, n, chunk) point is, to pick the SDPA backend at the heaviest one: cache
    read for decode, attention pairs for prefill, both for a mixed step."""
    phase, B, n, chunk = point
    if phase == "prefill":
        return B * n * n
    return B * n + chunk * chunk


def mla_decode_kernel(batch: int) -> str:
    """Which MLA decode attention runs at this batch, as the records name it."""
    if R.mla_flash:
        return "flashmla"
    if R.mla_triton and batch >= MLA_TRITON_MIN_BATCH:
        return "triton-mla-decode"
    return "torch-bmm-absorbed-mla"


def log(msg: str) -> None:
    write_log(msg, R.t0, R.logf)


# ---------------------------------------------------------------- fused elementwise work


def _add_rms_norm(x, res, w):
    r = x + res
    rf = r.float()
    y = rf * torch.rsqrt(rf.pow(2).mean(-1, keepdim=True) + EPS) * w.float()
    return y.to(x.dtype), r


def _rms_norm(x, w):
    xf = x.float()
    return (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + EPS) * w.float()).to(x.dtype)


def _rot(t, cos, sin):
    t1, t2 = t.float().chunk(2, -1)
    return torch.cat((t1 * cos - t2 * sin, t2 * cos + t1 * sin), -1).to(t.dtype)


def _rope(q, k, cos, sin):
    return _rot(q, cos, sin), _rot(k, cos, sin)


def _norm_rope(q, k, qw, kw, cos, sin):
    return _rot(_rms_norm(q, qw), cos, sin), _rot(_rms_norm(k, kw), cos, sin)


def _silu_mul(gu):
    g, u = gu.chunk(2, -1)
    return (F.silu(g.float()) * u.float()).to(gu.dtype)


def _sigmoid_gate(o, gate):
    return (o.float() * torch.sigmoid(gate.float())).to(o.dtype)


def _gated_rms_norm(o, z, w):
    of = o.float()
    y = of * torch.rsqrt(of.pow(2).mean(-1, keepdim=True) + EPS) * w.float()
    return (y * F.silu(z.float())).to(o.dtype)


def _gdn_gates(ba, a_log, dt_bias):
    b, a = ba.float().chunk(2, -1)
    g = -torch.exp(a_log) * F.softplus(a + dt_bias)
    return g, torch.sigmoid(b).to(ba.dtype)


def _gdn_decode_conv(x, conv_state, conv_w, sizes: tuple[int, int, int]):
    """x (B, C) new inputs, conv_state (B, C, K-1), conv_w (C, K): silu(causal depthwise conv), split into
    q, k, v. Each part leaves the compiled function contiguous: as strided views of one (B, C) row, fla's
    recurrent kernel would first copy each of them with an unfused copy kernel (from batch 2). Inductor
    (PyTorch 2.11) still writes the three parts with three small kernels, so the kernel count is unchanged;
    the elementwise time at batch 16 fell from 1.00 to 0.87 ms (eager profiles in
    measurements/h200-model-step*.log)."""
    window = torch.cat((conv_state, x.unsqueeze(-1)), -1)
    y = F.silu((window.float() * conv_w.float()).sum(-1)).to(x.dtype)
    q, k, v = y.split(sizes, -1)
    return q.contiguous(), k.contiguous(), v.contiguous(), window[..., 1:]


def _kda_gates(f, b, a_log, dt_bias):
    """Kimi Delta Attention's per-channel decay (log space, fp32) and beta from their projections:
    f (rows, H*K) -> g (rows, H, K) = -exp(A_log[h]) * softplus(f + dt_bias); b (rows, H) -> sigmoid."""
    heads = a_log.shape[0]
    g = -torch.exp(a_log).unsqueeze(-1) * F.softplus(f.float().view(f.shape[0], heads, -1)
                                                     + dt_bias.view(heads, -1))
    return g, torch.sigmoid(b.float()).to(b.dtype)


def _kda_decode_conv(q, k, v, conv_state, conv_w, sizes: tuple[int, int, int]):
    """KDA's q, k, v projections (separate GEMMs, as costsim counts them) through one short conv."""
    return _gdn_decode_conv(torch.cat((q, k, v), -1), conv_state, conv_w, sizes)


def _kda_prefill_conv(q, k, v, conv_w, sizes: tuple[int, int, int]):
    """The prefill's short conv on each projection as it comes (no concatenated copy, each output
    contiguous: a first version through one concatenation ran at 0.68 TB/s), and the last K-1 inputs as
    the conv state."""
    keep = conv_w.shape[1] - 1
    parts = (q, k, v)
    outs = [_causal_conv_silu(t, wp) for t, wp in zip(parts, conv_w.split(sizes, 0), strict=True)]
    tail = torch.cat([t[:, t.shape[1] - keep:] for t in parts], -1).transpose(1, 2)
    return outs[0], outs[1], outs[2], tail


def _softmax_masked(scores, mask, scale: float):
    return torch.softmax(scores.float() * scale + mask, -1).to(scores.dtype)


def _causal_conv_silu(x, w):
    """Depthwise causal conv over time, x (B, S, C) as it comes out of the projection (no transpose),
    w (C, K): y[t] = silu(sum_k w[:, k] x[t - K + 1 + k]); one fused pass like causal-conv1d's kernel."""
    k_size, seq = w.shape[1], x.shape[1]
    xp = F.pad(x, (0, 0, k_size - 1, 0))
    acc = xp[:, 0:seq].float() * w[:, 0].float()
    for k in range(1, k_size):
        acc = acc + xp[:, k:k + seq].float() * w[:, k].float()
    return F.silu(acc).to(x.dtype)


FUNCS = {f.__name__: f for f in (_add_rms_norm, _rms_norm, _rope, _norm_rope, _silu_mul, _sigmoid_gate,
                                 _gated_rms_norm, _gdn_gates, _gdn_decode_conv, _softmax_masked,
                                 _causal_conv_silu, _kda_gates, _kda_decode_conv, _kda_prefill_conv)}
K: dict = {}


def set_fusion(on: bool) -> None:
    """Static shapes first; Dynamo's automatic dynamic shapes then recompile once with only the dims that
    changed (the row count) symbolic, so feature sizes stay constants in the index math (runtime divisors
    made dynamic=True kernels several times slower than bandwidth). Reset per model."""
    K.clear()
    for name, fn in FUNCS.items():
        K[name[1:]] = torch.compile(fn) if on else fn


def sdpa(q, k, v, causal, backend):
    from torch.nn.attention import sdpa_kernel

    with sdpa_kernel([backend]):
        return F.scaled_dot_product_attention(q, k, v, is_causal=causal, enable_gqa=k.shape[1] != q.shape[1])


FLEX: dict = {}  # compiled flex_attention and its block masks, per (length, window)


def sliding_attn(q, k, v, st, ctx, window, backend):
    """Sliding-window attention past the window, over a ring-buffer cache of `window` slots (token p in
    slot p % window), as serving engines keep a sliding layer's cache. Decode writes its slot and reads all
    of them (they all hold the window once ctx >= window). A prefill longer than the window runs
    FlexAttention with a sliding causal block mask (the SDPA backends take no window), or, as the math
    reference of the checks, SDPA's math backend with the band as a boolean mask; then it keeps its last
    `window` tokens."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    S = q.shape[2]
    if S == 1:
        slot = ctx % window
        st["k"][:, :, slot:slot + 1].copy_(k)
        st["v"][:, :, slot:slot + 1].copy_(v)
        return sdpa(q, st["k"], st["v"], False, backend)
    if ctx:
        raise ValueError("sliding_attn: a prefill after cached tokens is not implemented")
    if backend == SDPBackend.MATH:
        ones = torch.ones(S, S, dtype=torch.bool, device=DEV)
        band = ones.tril() & ~ones.tril(-window)  # key j in the window of query i: i - window < j <= i
        with sdpa_kernel([SDPBackend.MATH]):
            o = F.scaled_dot_product_attention(q, k, v, attn_mask=band, enable_gqa=k.shape[1] != q.shape[1])
    else:
        o = flex_sliding(q, k, v, window)
    shift = (S - window) % window
    st["k"].copy_(k[:, :, S - window:].roll(shift, dims=2))
    st["v"].copy_(v[:, :, S - window:].roll(shift, dims=2))
    return o


def flex_sliding(q, k, v, window):
    from torch.nn.attention.flex_attention import create_block_mask, flex_attention

    S = q.shape[2]
    if "fn" not in FLEX:
        FLEX["fn"] = torch.compile(flex_attention, dynamic=False)
    if (S, window) not in FLEX:  # built on the warm-up call, outside graph capture
        def sliding_causal(b, h, q_idx, kv_idx):
            return (q_idx >= kv_idx) & (q_idx - kv_idx < window)

        FLEX[(S, window)] = create_block_mask(sliding_causal, None, None, S, S, device=DEV)
    return FLEX["fn"](q, k, v, block_mask=FLEX[(S, window)], enable_gqa=k.shape[1] != q.shape[1])


def rope_tables(positions, dim, base=500000.0):
    inv = 1.0 / (base ** (torch.arange(0, dim, 2, device=DEV, dtype=torch.float32) / dim))
    ang = positions.float()[:, None] * inv[None, :]
    return torch.cos(ang), torch.sin(ang)


def w(*shape, std=None):
    t = torch.randn(*shape, device=DEV, dtype=DT)
    return t.mul_(std if std is not None else shape[0] ** -0.5)


def ones(n):
    return torch.ones(n, device=DEV, dtype=DT)


# ---------------------------------------------------------------- layers


def softmax_attn_weights(m, gated):
    d, H, Hkv, D = m["hidden"], m["heads"], m["kv_heads"], m["head_dim"]
    p = {"wqkv": w(d, H * D * (2 if gated else 1) + 2 * Hkv * D), "wo": w(H * D, d)}
    if gated:
        p["qn"], p["kn"] = ones(D), ones(D)
    return p


def mixed_attn(q, k, v, st, ctx, backend):
    """A continuous-batching step's attention, as two calls (an engine's varlen kernels split it the same
    way): rows [0, P) are a fresh request's prefill chunk, causal over its own tokens, written to its cache
    st['pk'], st['pv'] (1, Hkv, P, D); rows [P, P+B) one new token for each of B decodes at context `ctx`,
    written at slot ctx of st['k'], st['v'] (B, Hkv, ctx+1, D) and attending to all of it.
    q (N, H, D), k, v (N, Hkv, D) -> (N, H*D)."""
    N, H, D = q.shape
    P = st["chunk"]
    qp, kp, vp = (t[:P].unsqueeze(0).transpose(1, 2) for t in (q, k, v))  # (1, heads, P, D)
    st["pk"][:, :, :P].copy_(kp)
    st["pv"][:, :, :P].copy_(vp)
    op = sdpa(qp, st["pk"][:, :, :P], st["pv"][:, :, :P], True, backend)  # (1, H, P, D)
    qd, kd, vd = (t[P:].unsqueeze(2) for t in (q, k, v))  # (B, heads, 1, D)
    st["k"][:, :, ctx:ctx + 1].copy_(kd)
    st["v"][:, :, ctx:ctx + 1].copy_(vd)
    od = sdpa(qd, st["k"][:, :, :ctx + 1], st["v"][:, :, :ctx + 1], False, backend)  # (B, H, 1, D)
    o = torch.empty(N, H, D, device=q.device, dtype=q.dtype)  # one output buffer, as a varlen kernel writes
    o[:P].copy_(op[0].transpose(0, 1))
    o[P:].copy_(od[:, :, 0])
    return o.view(N, H * D)


def softmax_attn(m, p, h, st, phase, ctx, backend, gated):
    """h (B, S, d) -> (B, S, d). Cache st['k'], st['v'] (B, Hkv, Cmax, D); the new tokens go at [ctx, ctx+S).
    A mixed step comes as B = 1, S = P + decodes (mixed_attn)."""
    B, S, _ = h.shape
    H, Hkv, D = m["heads"], m["kv_heads"], m["head_dim"]
    qkv = h @ p["wqkv"]
    sizes = [H * D] + ([H * D] if gated else []) + [Hkv * D, Hkv * D]
    parts = qkv.split(sizes, -1)
    q, k, v = parts[0], parts[-2], parts[-1]
    # fused elementwise work sees (rows, ...) with rows = B*S, so torch.compile keeps one graph per
    # function (it specialises only rows == 1)
    q, k = q.reshape(B * S, H, D), k.reshape(B * S, Hkv, D)
    cos, sin = st["cos"], st["sin"]  # (B*S, 1, D/2)
    if gated:
        q, k = K["norm_rope"](q, k, p["qn"], p["kn"], cos, sin)
    else:
        q, k = K["rope"](q, k, cos, sin)
    window = m.get("window")
    if phase == "mixed":
        o = mixed_attn(q, k, v.reshape(B * S, Hkv, D), st, ctx, backend).view(B, S, H * D)
        if gated:
            o = K["sigmoid_gate"](o.view(B * S, H * D), parts[1].reshape(B * S, H * D)).view(B, S, H * D)
        return o @ p["wo"]
    q, k, v = q.view(B, S, H, D), k.view(B, S, Hkv, D), v.view(B, S, Hkv, D)
    if window and ctx + S > window:
        o = sliding_attn(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), st, ctx, window, backend)
    else:
        st["k"][:, :, ctx:ctx + S].copy_(k.transpose(1, 2))
        st["v"][:, :, ctx:ctx + S].copy_(v.transpose(1, 2))
        o = sdpa(q.transpose(1, 2), st["k"][:, :, :ctx + S], st["v"][:, :, :ctx + S], phase == "prefill", backend)
    o = o.transpose(1, 2).reshape(B, S, H * D)
    if gated:
        o = K["sigmoid_gate"](o.view(B * S, H * D), parts[1].reshape(B * S, H * D)).view(B, S, H * D)
    return o @ p["wo"]


def gdn_weights(m):
    d, Hk, Hv, Dk, Dv, Kc = (m["hidden"], m["gdn_k_heads"], m["gdn_v_heads"], m["gdn_head_k"], m["gdn_head_v"],
                             m["conv_kernel"])
    conv = 2 * Hk * Dk + Hv * Dv
    return {"w_qkvz": w(d, conv + Hv * Dv), "w_ba": w(d, 2 * Hv), "conv_w": w(conv, Kc, std=0.5),
            "a_log": torch.log(torch.linspace(1, 16, Hv, device=DEV)), "dt_bias": torch.zeros(Hv, device=DEV),
            "norm": ones(Dv), "w_out": w(Hv * Dv, d)}


def gdn(m, p, h, st, phase):
    from fla.ops.gated_delta_rule import chunk_gated_delta_rule, fused_recurrent_gated_delta_rule

    B, S, _ = h.shape
    Hk, Hv, Dk, Dv = m["gdn_k_heads"], m["gdn_v_heads"], m["gdn_head_k"], m["gdn_head_v"]
    conv = 2 * Hk * Dk + Hv * Dv
    qkvz = h @ p["w_qkvz"]
    x, z = qkvz.split([conv, Hv * Dv], -1)
    g, beta = K["gdn_gates"]((h @ p["w_ba"]).view(B * S, 2 * Hv), p["a_log"], p["dt_bias"])
    g, beta = g.view(B, S, Hv), beta.view(B, S, Hv)
    sizes = (Hk * Dk, Hk * Dk, Hv * Dv)
    if phase == "decode":
        q, k, v, new_state = K["gdn_decode_conv"](x[:, 0], st["conv"], p["conv_w"], sizes)
        st["conv"].copy_(new_state)
    else:
        y = K["causal_conv_silu"](x, p["conv_w"])
        st["conv"].copy_(x[:, S - (m["conv_kernel"] - 1):].transpose(1, 2))
        q, k, v = y.split(sizes, -1)
    # fla takes Hv > Hk (each key head serves Hv/Hk value heads) as is, and l2-normalises q, k in the kernel
    q, k, v = q.reshape(B, S, Hk, Dk), k.reshape(B, S, Hk, Dk), v.reshape(B, S, Hv, Dv)
    if phase == "decode":
        o, _ = fused_recurrent_gated_delta_rule(q, k, v, g=g, beta=beta, scale=Dk ** -0.5,
                                                initial_state=st["state"], output_final_state=True,
                                                use_qk_l2norm_in_kernel=True)
    else:
        o, _ = chunk_gated_delta_rule(q, k, v, g, beta, scale=Dk ** -0.5, output_final_state=True,
                                      use_qk_l2norm_in_kernel=True)
    o = K["gated_rms_norm"](o.reshape(B * S, Hv, Dv), z.reshape(B * S, Hv, Dv), p["norm"])
    return o.reshape(B, S, Hv * Dv) @ p["w_out"]


def kda_weights(m):
    d, H, Dk, Dv = m["hidden"], m["kda_heads"], m["kda_head_k"], m["kda_head_v"]
    key, val, rank = H * Dk, H * Dv, Dv  # the gates' low rank is head_v_dim, as costsim counts them
    return {"w_q": w(d, key), "w_k": w(d, key), "w_v": w(d, val), "w_fa": w(d, rank), "w_fb": w(rank, key),
            "w_b": w(d, H), "w_ga": w(d, rank), "w_gb": w(rank, val),
            "conv_w": w(2 * key + val, m["conv_kernel"], std=0.5),
            "a_log": torch.log(torch.linspace(1, 16, H, device=DEV)), "dt_bias": torch.zeros(key, device=DEV),
            "norm": ones(Dv), "w_out": w(val, d)}


def kda(m, p, h, st, phase):
    """Kimi Delta Attention (Kimi Linear): GDN's delta rule with a per-channel decay, through fla."""
    from fla.ops.kda import chunk_kda, fused_recurrent_kda

    B, S, _ = h.shape
    H, Dk, Dv = m["kda_heads"], m["kda_head_k"], m["kda_head_v"]
    sizes = (H * Dk, H * Dk, H * Dv)
    q, k, v = h @ p["w_q"], h @ p["w_k"], h @ p["w_v"]
    g, beta = K["kda_gates"](((h @ p["w_fa"]) @ p["w_fb"]).view(B * S, -1), (h @ p["w_b"]).view(B * S, H),
                             p["a_log"], p["dt_bias"])
    gate = (h @ p["w_ga"]) @ p["w_gb"]
    if phase == "decode":
        q, k, v, new_state = K["kda_decode_conv"](q[:, 0], k[:, 0], v[:, 0], st["conv"], p["conv_w"], sizes)
        st["conv"].copy_(new_state)
    else:
        q, k, v, tail = K["kda_prefill_conv"](q, k, v, p["conv_w"], sizes)
        st["conv"].copy_(tail)
    q, k, v = q.reshape(B, S, H, Dk), k.reshape(B, S, H, Dk), v.reshape(B, S, H, Dv)
    g, beta = g.view(B, S, H, Dk), beta.view(B, S, H)
    if phase == "decode":
        o, _ = fused_recurrent_kda(q, k, v, g, beta, scale=Dk ** -0.5, initial_state=st["state"],
                                   output_final_state=True, use_qk_l2norm_in_kernel=True)
    else:
        o, _ = chunk_kda(q, k, v, g, beta, scale=Dk ** -0.5, output_final_state=True,
                         use_qk_l2norm_in_kernel=True)
    o = K["gated_rms_norm"](o.reshape(B * S, H, Dv), gate.reshape(B * S, H, Dv), p["norm"])
    return o.reshape(B, S, H * Dv) @ p["w_out"]


def mla_weights(m):
    d, H, qr, kr = m["hidden"], m["heads"], m["q_lora_rank"], m["kv_lora_rank"]
    nope, rope, vd = m["qk_nope_head_dim"], m["qk_rope_head_dim"], m["v_head_dim"]
    kv_b = w(kr, H * (nope + vd))
    per_head = kv_b.view(kr, H, nope + vd)
    query = ({"w_q": w(d, H * (nope + rope))} if qr is None  # Kimi Linear: a plain query projection
             else {"w_qa": w(d, qr), "qa_norm": ones(qr), "w_qb": w(qr, H * (nope + rope))})
    return {**query,
            "w_kva": w(d, kr + rope), "kva_norm": ones(kr), "w_kvb": kv_b,
            # absorbed decode: W_UK (H, nope, kr) turns q_nope into a latent query, W_UV (H, kr, vd) the output
            "w_uk": per_head[:, :, :nope].permute(1, 2, 0).contiguous(),
            "w_uv": per_head[:, :, nope:].permute(1, 0, 2).contiguous(),
            "wo": w(H * vd, d)}


def mla(m, p, h, st, phase, ctx, backend):
    B, S, _ = h.shape
    H, kr = m["heads"], m["kv_lora_rank"]
    nope, rope, vd = m["qk_nope_head_dim"], m["qk_rope_head_dim"], m["v_head_dim"]
    if "w_q" in p:
        q = (h @ p["w_q"]).view(B, S, H, nope + rope)
    else:
        q = (K["rms_norm"]((h @ p["w_qa"]).view(B * S, -1), p["qa_norm"]) @ p["w_qb"]).view(B, S, H, nope + rope)
    kv = (h @ p["w_kva"]).view(B * S, kr + rope)
    c_kv = K["rms_norm"](kv[:, :kr], p["kva_norm"]).view(B, S, kr)
    q_rope, k_rope = K["rope"](q[..., nope:].reshape(B * S, H, rope), kv[:, kr:].unsqueeze(1), st["cos"], st["sin"])
    q_rope, k_rope = q_rope.view(B, S, H, rope), k_rope.view(B, S, 1, rope)
    st["cache"][:, ctx:ctx + S, :kr].copy_(c_kv)
    st["cache"][:, ctx:ctx + S, kr:].copy_(k_rope.squeeze(2))
    scale = (nope + rope) ** -0.5
    if phase == "prefill":  # expanded (MHA) form, cheaper for a fresh prompt
        kvb = (c_kv @ p["w_kvb"]).view(B, S, H, nope + vd)
        k = torch.cat((kvb[..., :nope], k_rope.expand(B, S, H, rope)), -1)
        qf = torch.cat((q[..., :nope], q_rope), -1)
        v = kvb[..., nope:]
        if st["pad_v"]:
            v = F.pad(v, (0, nope + rope - vd))
        o = sdpa(qf.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), True, backend)[..., :vd]
        o = o.transpose(1, 2).reshape(B, S, H * vd)
    else:  # absorbed (MQA over the latent cache)
        q_lat = torch.bmm(q[:, 0, :, :nope].transpose(0, 1), p["w_uk"]).transpose(0, 1)  # (B, H, kr)
        qf = torch.cat((q_lat, q_rope[:, 0]), -1)  # (B, H, kr + rope)
        # the whole cache, rounded up to R.mla_pad tokens (aligned cuBLAS rows, FlashMLA pages); `mask` hides
        # the padding
        cache = st["cache"]
        kernel = mla_decode_kernel(B)
        if kernel == "flashmla":  # the production kernel (FlashMLA through flashmla_decode.py)
            from flashmla_decode import flashmla_decode

            o_lat = flashmla_decode(qf.contiguous(), cache, scale, st["flash_ws"], plan=st["flash_plan"])
        elif kernel == "triton-mla-decode":  # one fused pass over the latent cache (mla_decode.py)
            from mla_decode import mla_decode

            o_lat = mla_decode(qf.contiguous(), cache, ctx + S, scale)
        else:
            scores = torch.bmm(qf, cache.transpose(1, 2))  # (B, H, C)
            prob = K["softmax_masked"](scores.view(B * H, -1), st["mask"], scale).view(B, H, -1)
            o_lat = torch.bmm(prob, cache[..., :kr])  # (B, H, kr)
        o = torch.bmm(o_lat.transpose(0, 1), p["w_uv"]).transpose(0, 1).reshape(B, S, H * vd)
    return o @ p["wo"]


def ffn_weights(m):
    return {"w_gu": w(m["hidden"], 2 * m["intermediate"]), "w_down": w(m["intermediate"], m["hidden"])}


def ffn(p, h):
    B, S, _ = h.shape
    return (K["silu_mul"]((h @ p["w_gu"]).view(B * S, -1)) @ p["w_down"]).view(B, S, -1)


# ---------------------------------------------------------------- eager (HF-transformers-style) layers
# --style eager: the step as a plain PyTorch / HF-transformers model runs it, op for op (Llama's and
# Qwen3-Next's modeling code in transformers 4.5x/5.x, torch fallbacks where HF would call an optional
# fused kernel): nn.Linear weights stored (out, in) and applied with F.linear, one GEMM per projection
# except where HF itself has one (Qwen3-Next's q_proj carries the output gate, GDN's in_proj_qkvz and
# in_proj_ba), every elementwise op its own kernel, no torch.compile, no CUDA graph. Numerically the same
# function as the engine step (same weights, re-laid out by Model.to_eager; norms with weight 1 as the
# harness builds them, the engine's full-head-dim rotary and its EPS).


def hf_rms_norm(x, w):
    """LlamaRMSNorm.forward."""
    dtype = x.dtype
    x = x.to(torch.float32)
    variance = x.pow(2).mean(-1, keepdim=True)
    x = x * torch.rsqrt(variance + EPS)
    return w * x.to(dtype)


def hf_rotate_half(x):
    x1, x2 = x[..., : x.shape[-1] // 2], x[..., x.shape[-1] // 2:]
    return torch.cat((-x2, x1), dim=-1)


def hf_rotary_tables(inv_freq, pos, dtype):
    """LlamaRotaryEmbedding.forward, once per step: pos (B, S) -> cos, sin (B, S, D) in the model's dtype."""
    inv = inv_freq[None, :, None].float().expand(pos.shape[0], -1, 1)
    freqs = (inv @ pos[:, None, :].float()).transpose(1, 2)
    emb = torch.cat((freqs, freqs), dim=-1)
    return emb.cos().to(dtype), emb.sin().to(dtype)


def hf_apply_rotary(q, k, cos, sin):
    """apply_rotary_pos_emb: q (B, H, S, D), cos (B, S, D)."""
    cos, sin = cos.unsqueeze(1), sin.unsqueeze(1)
    return q * cos + hf_rotate_half(q) * sin, k * cos + hf_rotate_half(k) * sin


def eager_attn(m, p, h, st, phase, ctx, backend, gated, cos, sin):
    """LlamaAttention / Qwen3NextAttention (gated: q_proj carries the output gate, q/k RMSNorm per head,
    sigmoid(gate) times the output) with SDPA and a static cache (new tokens copied in at [ctx, ctx+S))."""
    B, S, _ = h.shape
    H, Hkv, D = m["heads"], m["kv_heads"], m["head_dim"]
    if gated:
        q, gate = torch.chunk(F.linear(h, p["q_proj"]).view(B, S, H, 2 * D), 2, dim=-1)
        gate = gate.reshape(B, S, H * D)
        q = hf_rms_norm(q, p["q_norm"])
        k = hf_rms_norm(F.linear(h, p["k_proj"]).view(B, S, Hkv, D), p["k_norm"])
    else:
        q = F.linear(h, p["q_proj"]).view(B, S, H, D)
        k = F.linear(h, p["k_proj"]).view(B, S, Hkv, D)
    v = F.linear(h, p["v_proj"]).view(B, S, Hkv, D)
    q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
    q, k = hf_apply_rotary(q, k, cos, sin)
    window = m.get("window")
    if phase == "mixed":
        o = mixed_attn(q[0].transpose(0, 1), k[0].transpose(0, 1), v[0].transpose(0, 1), st, ctx,
                       backend).view(B, S, H * D)
    else:
        if window and ctx + S > window:
            o = sliding_attn(q, k, v, st, ctx, window, backend)
        else:
            st["k"][:, :, ctx:ctx + S].copy_(k)
            st["v"][:, :, ctx:ctx + S].copy_(v)
            o = F.scaled_dot_product_attention(q, st["k"][:, :, :ctx + S], st["v"][:, :, :ctx + S],
                                               is_causal=phase == "prefill", enable_gqa=Hkv != H)
        o = o.transpose(1, 2).contiguous().reshape(B, S, H * D)
    if gated:
        o = o * torch.sigmoid(gate)
    return F.linear(o, p["o_proj"])


def hf_gated_rms_norm(x, gate, w):
    """Qwen3NextRMSNormGated.forward (its torch path; HF takes fla's fused kernel when fla is installed)."""
    dtype = x.dtype
    x = x.to(torch.float32)
    variance = x.pow(2).mean(-1, keepdim=True)
    x = x * torch.rsqrt(variance + EPS)
    x = w * x.to(dtype)
    x = x * F.silu(gate.to(torch.float32))
    return x.to(dtype)


def eager_gdn(m, p, h, st, phase):
    """Qwen3NextGatedDeltaNet.forward with its torch fallbacks for the short conv (torch_causal_conv1d_update,
    nn.Conv1d) and the gated norm; fla's chunk / fused_recurrent kernels for the recurrence, as HF calls
    them (q, k repeated to the value heads, l2-norm in the kernel). HF's in_proj_qkvz interleaves q, k, v, z
    per key-head group and un-interleaves them with views and reshapes; these columns come in q|k|v|z order,
    so the split is views. The state is not carried between timed calls (as in the engine style)."""
    from fla.ops.gated_delta_rule import chunk_gated_delta_rule, fused_recurrent_gated_delta_rule

    B, S, _ = h.shape
    Hk, Hv, Dk, Dv, Kc = (m["gdn_k_heads"], m["gdn_v_heads"], m["gdn_head_k"], m["gdn_head_v"],
                          m["conv_kernel"])
    key_dim, value_dim = Hk * Dk, Hv * Dv
    conv = 2 * key_dim + value_dim
    q, k, v, z = F.linear(h, p["in_proj_qkvz"]).split([key_dim, key_dim, value_dim, value_dim], -1)
    b, a = F.linear(h, p["in_proj_ba"]).split([Hv, Hv], -1)
    mixed = torch.cat((q, k, v), dim=-1).transpose(1, 2)  # (B, conv, S)
    if phase == "decode":  # torch_causal_conv1d_update
        window = torch.cat([st["conv"], mixed], dim=-1)
        st["conv"].copy_(window[:, :, -(Kc - 1):])
        mixed = F.silu(F.conv1d(window, p["conv1d"], None, padding=0, groups=conv)[:, :, -S:])
    else:
        st["conv"].copy_(F.pad(mixed, (Kc - 1 - S, 0)))
        mixed = F.silu(F.conv1d(mixed, p["conv1d"], None, padding=Kc - 1, groups=conv)[:, :, :S])
    mixed = mixed.transpose(1, 2)
    q, k, v = torch.split(mixed, [key_dim, key_dim, value_dim], dim=-1)
    q, k, v = q.reshape(B, S, -1, Dk), k.reshape(B, S, -1, Dk), v.reshape(B, S, -1, Dv)
    beta = b.sigmoid()
    g = -p["A_log"].float().exp() * F.softplus(a.float() + p["dt_bias"])
    if Hv // Hk > 1:
        q, k = q.repeat_interleave(Hv // Hk, dim=2), k.repeat_interleave(Hv // Hk, dim=2)
    if phase == "decode":
        o, _ = fused_recurrent_gated_delta_rule(q, k, v, g=g, beta=beta, initial_state=st["state"],
                                                output_final_state=True, use_qk_l2norm_in_kernel=True)
    else:
        o, _ = chunk_gated_delta_rule(q, k, v, g=g, beta=beta, initial_state=None, output_final_state=True,
                                      use_qk_l2norm_in_kernel=True)
    o = hf_gated_rms_norm(o.reshape(-1, Dv), z.reshape(-1, Dv), p["norm"])
    return F.linear(o.reshape(B, S, -1), p["out_proj"])


def eager_mlp(p, h):
    """LlamaMLP.forward: down_proj(act_fn(gate_proj(x)) * up_proj(x))."""
    return F.linear(F.silu(F.linear(h, p["gate_proj"])) * F.linear(h, p["up_proj"]), p["down_proj"])


def _t(x):
    """An engine (in, out) weight as nn.Linear's (out, in)."""
    return x.t().contiguous()


def eager_layer_weights(m, kind, layer):
    """One layer's engine weights, re-laid out as the HF modules hold them (the same numbers)."""
    mix, ffn_w = layer["mix"], layer["ffn"]
    if kind == "gdn":
        new_mix = {"in_proj_qkvz": _t(mix["w_qkvz"]), "in_proj_ba": _t(mix["w_ba"]),
                   "conv1d": mix["conv_w"].unsqueeze(1).contiguous(), "A_log": mix["a_log"],
                   "dt_bias": mix["dt_bias"], "norm": mix["norm"], "out_proj": _t(mix["w_out"])}
    elif kind in ("attn", "gated_attn"):
        H, Hkv, D = m["heads"], m["kv_heads"], m["head_dim"]
        gated = kind == "gated_attn"
        parts = mix["wqkv"].split([H * D] + ([H * D] if gated else []) + [Hkv * D, Hkv * D], -1)
        d = parts[0].shape[0]
        # Qwen3-Next's q_proj holds each head's query and gate side by side (chunked per head in forward)
        wq = torch.cat((parts[0].view(d, H, D), parts[1].view(d, H, D)), -1).reshape(d, 2 * H * D) if gated \
            else parts[0]
        new_mix = {"q_proj": _t(wq), "k_proj": _t(parts[-2]), "v_proj": _t(parts[-1]), "o_proj": _t(mix["wo"])}
        if gated:
            new_mix["q_norm"], new_mix["k_norm"] = mix["qn"], mix["kn"]
    else:
        raise NotImplementedError(f"--style eager: no HF-style {kind} layer here")
    inter = ffn_w["w_down"].shape[0]
    new_ffn = {"gate_proj": _t(ffn_w["w_gu"][:, :inter]), "up_proj": _t(ffn_w["w_gu"][:, inter:]),
               "down_proj": _t(ffn_w["w_down"])}
    return {"mix": new_mix, "ffn": new_ffn, "n1": layer["n1"], "n2": layer["n2"]}


EAGER_KINDS = ("gqa", "hybrid_gdn")  # models whose every layer has an HF-style eager form here


# ---------------------------------------------------------------- model


def tp_shapes(m: dict, tp: int) -> dict:
    """One rank's share of a GQA model under tensor parallelism: heads, KV heads (replicated beyond
    their count), FFN width and vocabulary divided by tp, as costsim's engine/sharding.py shards them."""
    if tp == 1:
        return m
    if m["kind"] != "gqa" or m["heads"] % tp or m["intermediate"] % tp:
        raise SystemExit(f"--tp {tp}: only GQA models whose heads and FFN width divide by tp are sharded here")
    kv = m["kv_heads"] // tp if m["kv_heads"] % tp == 0 else 1
    return dict(m, heads=m["heads"] // tp, kv_heads=kv, intermediate=m["intermediate"] // tp,
                vocab=-(-m["vocab"] // tp))


def all_reduce(x):
    """Sum a row-parallel output over the tensor-parallel ranks (identity on one GPU)."""
    if R.tp > 1:
        import torch.distributed as dist

        dist.all_reduce(x)
    return x


def recurrent_state(B, k_heads, v_heads, head_k, head_v, conv_kernel):
    """A delta-rule layer's cache: the short conv's last inputs (q, k, v channels) and the fp32 state."""
    conv = 2 * k_heads * head_k + v_heads * head_v
    return {"conv": torch.zeros(B, conv, conv_kernel - 1, device=DEV, dtype=DT),
            "state": torch.randn(B, v_heads, head_k, head_v, device=DEV, dtype=torch.float32).mul_(0.01)}


class Model:
    def __init__(self, name):
        m = tp_shapes(MODELS[name], R.tp)
        self.name, self.m = name, m
        d = m["hidden"]
        self.kinds = []
        for i in range(m["layers"]):
            if m["kind"] == "hybrid_gdn":
                self.kinds.append("gdn" if m["pattern"][i % len(m["pattern"])] == "G" else "gated_attn")
            elif m["kind"] == "hybrid_kda":
                self.kinds.append("kda" if m["pattern"][i % len(m["pattern"])] == "K" else "mla")
            else:
                self.kinds.append("mla" if m["kind"] == "mla" else "attn")
        self.layers = []
        for kind in self.kinds:
            if kind == "gdn":
                mix = gdn_weights(m)
            elif kind == "kda":
                mix = kda_weights(m)
            elif kind == "mla":
                mix = mla_weights(m)
            else:
                mix = softmax_attn_weights(m, kind == "gated_attn")
            self.layers.append({"mix": mix, "ffn": ffn_weights(m), "n1": ones(d), "n2": ones(d)})
        self.emb = w(m["vocab"], d, std=1.0)
        self.final_norm = ones(d)
        self.lm_head = w(d, m["vocab"])
        self.weight_bytes = sum(t.numel() * t.element_size() for t in self._tensors())
        self.style = "engine"

    def to_eager(self):
        """Re-lay the weights out as an HF-transformers model holds them (--style eager), layer by layer so
        the memory peak is one layer's worth; step() then runs the eager, op-for-op form."""
        if self.m["kind"] not in EAGER_KINDS:
            raise NotImplementedError(f"--style eager is implemented for {', '.join(EAGER_KINDS)} models only")
        for i, kind in enumerate(self.kinds):
            self.layers[i] = eager_layer_weights(self.m, kind, self.layers[i])
        self.lm_head = _t(self.lm_head)  # (vocab, d), as nn.Linear holds it
        rope_dim = self.m["head_dim"]
        self.inv_freq = 1.0 / (500000.0 ** (torch.arange(0, rope_dim, 2, device=DEV, dtype=torch.float32)
                                            / rope_dim))
        self.style = "eager"
        self.weight_bytes = sum(t.numel() * t.element_size() for t in self._tensors())

    def _tensors(self):
        yield self.emb
        yield self.final_norm
        yield self.lm_head
        for layer in self.layers:
            for part in layer.values():
                if isinstance(part, dict):
                    for k, t in part.items():
                        if k not in ("w_uk", "w_uv"):  # views of w_kvb kept contiguous for decode
                            yield t
                else:
                    yield part

    def state(self, B, cmax, S, ctx, chunk=0):
        """Cache for `cmax` tokens per sequence, rope tables for positions [ctx, ctx+S). With `chunk` (a mixed
        step: B decodes, S = 1, at context ctx, plus a fresh request's prefill chunk of `chunk` tokens) each
        softmax layer also gets the chunk's cache, and the positions are the chunk's [0, chunk) then ctx for
        each decode. The chunk's cache is zeros (written before it is read), so the decode caches hold the
        same random contents as state(B, cmax, 1, ctx) after the same seed."""
        m = self.m
        if chunk and any(k not in ("attn", "gated_attn") for k in self.kinds):
            raise NotImplementedError("mixed steps: only models whose every mixer is softmax attention")
        if chunk and m.get("window"):
            raise NotImplementedError("mixed steps: not with a sliding window")
        states = []
        for kind in self.kinds:
            if kind == "gdn":
                states.append(recurrent_state(B, m["gdn_k_heads"], m["gdn_v_heads"], m["gdn_head_k"],
                                              m["gdn_head_v"], m["conv_kernel"]))
            elif kind == "kda":
                states.append(recurrent_state(B, m["kda_heads"], m["kda_heads"], m["kda_head_k"], m["kda_head_v"],
                                              m["conv_kernel"]))
            elif kind == "mla":
                padded = -(-cmax // R.mla_pad) * R.mla_pad
                mask = torch.zeros(padded, device=DEV)
                mask[cmax:] = float("-inf")
                states.append({"cache": torch.randn(B, padded, m["kv_lora_rank"] + m["qk_rope_head_dim"],
                                                    device=DEV, dtype=DT), "mask": mask})
                if R.mla_flash and S == 1:  # page table and split buffers, built outside graph capture
                    from flashmla_decode import Workspace

                    # one workspace for every layer, its split schedule planned by the first MLA layer of
                    # the step only (serving engines run FlashMLA's get_mla_metadata once per step)
                    shared = next((x["flash_ws"] for x in states if "flash_ws" in x), None)
                    states[-1]["flash_plan"] = shared is None
                    states[-1]["flash_ws"] = shared or Workspace(B, m["heads"], padded, cmax, torch.device(DEV))
            else:  # a sliding layer keeps at most its window (a ring buffer)
                shape = (B, m["kv_heads"], min(cmax, m.get("window") or cmax), m["head_dim"])
                states.append({"k": torch.randn(*shape, device=DEV, dtype=DT),
                               "v": torch.randn(*shape, device=DEV, dtype=DT)})
                if chunk:
                    shape = (1, m["kv_heads"], chunk, m["head_dim"])
                    states[-1].update(pk=torch.zeros(*shape, device=DEV, dtype=DT),
                                      pv=torch.zeros(*shape, device=DEV, dtype=DT), chunk=chunk)
        positions = torch.arange(ctx, ctx + S, device=DEV).repeat(B)  # per row (B*S)
        if chunk:
            positions = torch.cat((torch.arange(chunk, device=DEV), positions))
        self.set_positions(states, positions)
        return states

    def set_positions(self, states, positions):
        """Rope tables for the step's rows (one position per row, B*S of them): per-row cos/sin (the engine
        style), and the positions themselves, from which the eager style builds its tables inside the step,
        as HF's rotary module does."""
        rope_dim = self.m.get("qk_rope_head_dim", self.m.get("head_dim"))
        cos, sin = rope_tables(positions, rope_dim)
        for s in states:
            s["cos"], s["sin"] = cos[:, None, :], sin[:, None, :]
            s["pos"] = positions

    def step(self, tokens, states, phase, ctx, backend):
        """tokens (B, S) -> logits of the last position (B, vocab). A mixed step takes tokens (1, P + B) (the
        chunk's P, then one per decode) and returns the logits of the chunk's last token and of each decode
        (B + 1, vocab)."""
        if self.style == "eager":
            return self._step_eager(tokens, states, phase, ctx, backend)
        B, S = tokens.shape
        d = self.m["hidden"]
        x = self.emb[tokens].view(B * S, d)
        res = torch.zeros_like(x)
        for kind, layer, st in zip(self.kinds, self.layers, states, strict=True):
            h, res = K["add_rms_norm"](x.view(B * S, d), res, layer["n1"])
            h = h.view(B, S, d)
            if kind == "gdn":
                x = gdn(self.m, layer["mix"], h, st, phase)
            elif kind == "kda":
                x = kda(self.m, layer["mix"], h, st, phase)
            elif kind == "mla":
                x = mla(self.m, layer["mix"], h, st, phase, ctx, backend)
            else:
                x = softmax_attn(self.m, layer["mix"], h, st, phase, ctx, backend, kind == "gated_attn")
            x = all_reduce(x)
            h, res = K["add_rms_norm"](x.view(B * S, d), res, layer["n2"])
            x = all_reduce(ffn(layer["ffn"], h.view(B, S, d)))
        h, _ = K["add_rms_norm"](x.view(B * S, d), res, self.final_norm)
        if phase == "mixed":
            return h[states[0]["chunk"] - 1:] @ self.lm_head
        return h.view(B, S, d)[:, -1] @ self.lm_head

    def _step_eager(self, tokens, states, phase, ctx, backend):
        """The step as an HF-transformers model's forward runs it (eager, op for op; see eager_attn)."""
        from torch.nn.attention import sdpa_kernel

        x, cos, sin = self.eager_embed(tokens, states)
        with sdpa_kernel([backend]):  # once per step (HF sets no backend; this pins the harness's choice)
            for kind, layer, st in zip(self.kinds, self.layers, states, strict=True):
                x = self.eager_mixer(kind, layer, st, x, phase, ctx, backend, cos, sin)
                x = self.eager_ffn(layer, x)
            return self.eager_head(x, states, phase)

    # an eager step's parts, which --host-blocks also times one by one
    def eager_embed(self, tokens, states):
        B, S = tokens.shape
        x = F.embedding(tokens, self.emb)
        cos, sin = hf_rotary_tables(self.inv_freq, states[0]["pos"].view(B, S), x.dtype)
        return x, cos, sin

    def eager_mixer(self, kind, layer, st, x, phase, ctx, backend, cos, sin):
        """The pre-norm, the mixer and the residual add of one decoder layer."""
        h = hf_rms_norm(x, layer["n1"])
        if kind == "gdn":
            h = eager_gdn(self.m, layer["mix"], h, st, phase)
        else:
            h = eager_attn(self.m, layer["mix"], h, st, phase, ctx, backend, kind == "gated_attn", cos, sin)
        return x + all_reduce(h)

    def eager_ffn(self, layer, x):
        """The post-attention norm, the MLP and the residual add."""
        return x + all_reduce(eager_mlp(layer["ffn"], hf_rms_norm(x, layer["n2"])))

    def eager_head(self, x, states, phase):
        x = hf_rms_norm(x, self.final_norm)
        rows = x[0, states[0]["chunk"] - 1:] if phase == "mixed" else x[:, -1]
        return F.linear(rows, self.lm_head)


# ---------------------------------------------------------------- timing


def rel_err(a, b):
    a, b = a.float(), b.float()
    return float((a - b).norm() / b.norm().clamp_min(1e-30))


def repetitions(run, target_s):
    """How many times to time `run` (one timed call sizes it: about target_s of calls, 3-200) and a start
    and end event per repetition. Every rank must run the same number of times (a graph or step holds
    collectives under tensor parallelism), so the ranks agree on the smallest."""
    torch.cuda.synchronize()
    t = time.perf_counter()
    run()
    torch.cuda.synchronize()
    one = max(time.perf_counter() - t, 1e-6)
    reps = agreed(int(min(200, max(5 if one < 0.5 else 3, target_s / one))), "MIN")
    starts = [torch.cuda.Event(enable_timing=True) for _ in range(reps)]
    ends = [torch.cuda.Event(enable_timing=True) for _ in range(reps)]
    return reps, starts, ends


def host_probe(launches=2000):
    """The host's speed at this moment: seconds per launch of a one-element in-place add, issued back to
    back with the GPU idle at the start (the queue never fills at this rate). An eager step's host time
    scales with it, so a record carrying it says which state the (shared, virtual) host was in."""
    x = torch.zeros(1, device="cuda")
    torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(launches):
        x.add_(1.0)
    dt = time.perf_counter() - t
    torch.cuda.synchronize()
    return dt / launches


def time_step_eager(fn, target_s):
    """--style eager: the step as an eager user sees it. Three warm-up calls, then per repetition a device
    sync (the queue empty, as after reading the previous step's logits), CUDA events around the eager call,
    so the host's launch cost is in the time wherever the GPU waits for it; the host's own time to issue
    the call (perf_counter around it) is kept too. Returns (stats, False)."""
    for _ in range(3):
        fn()
    reps, starts, ends = repetitions(fn, target_s)
    probe_before = host_probe()
    host = []
    for i in range(reps):
        torch.cuda.synchronize()
        starts[i].record()
        h0 = time.perf_counter()
        out = fn()
        host.append(time.perf_counter() - h0)
        ends[i].record()
        del out
    torch.cuda.synchronize()
    ts = sorted(s.elapsed_time(e) * 1e-3 for s, e in zip(starts, ends, strict=True))
    host.sort()

    def q(p, xs=ts):
        return xs[min(len(xs) - 1, round(p * (len(xs) - 1)))]

    return {"med": q(0.5), "p10": q(0.1), "p90": q(0.9), "reps": reps, "host_med": q(0.5, host),
            "probe": (probe_before, host_probe())}, False


def time_step(fn, target_s):
    """Capture fn in a CUDA graph and replay it; returns (stats, used_graph). Falls back to timing plain
    launches where capture fails (reported in the record). --style eager: time_step_eager."""
    if R.style == "eager":
        return time_step_eager(fn, target_s)
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(2):
            fn()
    torch.cuda.current_stream().wait_stream(side)
    torch.cuda.synchronize()
    graph = torch.cuda.CUDAGraph()
    try:
        with torch.cuda.graph(graph):
            out = fn()
        run = graph.replay
        used_graph = True
    except Exception as exc:
        log(f"  graph capture failed ({str(exc).splitlines()[0][:160]}); timing plain launches")
        graph, out, run, used_graph = None, None, fn, False
        torch.cuda.synchronize()
    run()
    reps, starts, ends = repetitions(run, target_s)
    for i in range(reps):
        starts[i].record()
        run()
        ends[i].record()
    torch.cuda.synchronize()
    ts = sorted(s.elapsed_time(e) * 1e-3 for s, e in zip(starts, ends, strict=True))

    def q(p):
        return ts[min(len(ts) - 1, round(p * (len(ts) - 1)))]

    del graph, out
    return {"med": q(0.5), "p10": q(0.1), "p90": q(0.9), "reps": reps}, used_graph


KERNEL_CLASSES = (  # (class, substrings of the kernel name), first match wins
    ("attention", ("flash", "fmha", "cudnn", "attention", "sdpa")),
    ("scan", ("chunk", "recurrent", "delta", "fwd_kernel", "fla")),
    ("gemm", ("gemm", "cutlass", "xmma", "nvjet", "sm90", "cublas", "splitk", "reduce_kernel")),
    ("elementwise", ("triton_", "elementwise", "vectorized", "copy", "cat", "index", "softmax", "conv", "fill")),
)


def kernel_class(name: str) -> str:
    n = name.lower()
    for klass, keys in KERNEL_CLASSES:
        if any(k in n for k in keys):
            return klass
    return "other"


RUNTIME_CALLS = ("cudaLaunchKernel", "cuLaunchKernel", "cudaLaunchKernelExC", "cuLaunchKernelEx", "cudaMemcpyAsync",
                 "cudaStreamSynchronize", "cudaDeviceSynchronize", "cudaMemsetAsync", "cudaMalloc", "cudaFree")


def log_host_profile(prof) -> None:
    """An eager step's host side under the profiler: CUDA runtime calls by count and host time (a
    synchronising call shows the host waiting on the GPU), and the ops with the most host time of their own."""
    runtime: dict = {}
    for e in prof.events():
        if e.device_type.name == "CPU" and e.name in RUNTIME_CALLS:
            n, us = runtime.get(e.name, (0, 0.0))
            runtime[e.name] = (n + 1, us + e.cpu_time_total)
    log("    host runtime calls: " + ", ".join(f"{k} {n}x {us / 1e3:.2f} ms" for k, (n, us) in sorted(runtime.items())))
    ops = sorted((a for a in prof.key_averages() if a.key not in RUNTIME_CALLS and a.self_cpu_time_total > 0),
                 key=lambda a: -a.self_cpu_time_total)[:R.profile_top]
    for a in ops:
        log(f"    host {a.self_cpu_time_total / 1e3:8.3f} ms self {a.count:5d}x {a.key[:100]}")


def profile_step(fn):
    """One eager step under the profiler: kernel count, device time per kernel class, top kernels."""
    from torch.profiler import ProfilerActivity, profile

    eager = R.style == "eager"
    with profile(activities=[ProfilerActivity.CUDA] + ([ProfilerActivity.CPU] if eager else [])) as prof:
        fn()
        torch.cuda.synchronize()
    if eager:  # where an eager step's host time goes (the profiler's own cost inflates it; shares are the point)
        try:
            log_host_profile(prof)
        except Exception as exc:
            log(f"    host profile failed: {exc!r}")
    kernels = [e for e in prof.events() if e.device_type.name == "CUDA"]
    by_class: dict = {}
    by_name: dict = {}
    calls: dict = {}
    for e in kernels:
        us = e.device_time if hasattr(e, "device_time") else e.cuda_time
        by_class[kernel_class(e.name)] = by_class.get(kernel_class(e.name), 0.0) + us * 1e-6
        by_name[e.name] = by_name.get(e.name, 0.0) + us * 1e-6
        calls[e.name] = calls.get(e.name, 0) + 1
    top = [(name, sec, calls[name]) for name, sec in sorted(by_name.items(), key=lambda kv: -kv[1])[:R.profile_top]]
    return len(kernels), {k: round(v, 7) for k, v in sorted(by_class.items())}, top


def passing_backends(model, phase):
    """The SDPA backends whose whole step matches the math on a small shape, as (label, backend, pad_v)
    (pad_v: for MLA prefill, whether V must be padded to the QK head dim; the first pad_v that any backend
    passes with)."""
    from torch.nn.attention import SDPBackend

    order = [("torch-sdpa-cudnn", SDPBackend.CUDNN_ATTENTION), ("torch-sdpa-flash", SDPBackend.FLASH_ATTENTION)]
    if R.attention != "auto":
        order = [entry for entry in order if entry[0] == R.attention]
    B, S = (1, 300) if phase == "prefill" else (2, 1)
    ctx = 0 if phase == "prefill" else 257
    chunk = 37 if phase == "mixed" else 0  # a mixed step: a 37-token chunk and 2 decodes at context 257
    tokens = torch.randint(0, model.m["vocab"], (1, chunk + B) if chunk else (B, S), device=DEV)
    def fresh_states(pad_v):
        # the same cache contents for every run: a decode step updates the conv state in place
        torch.manual_seed(11)
        states = model.state(B, ctx + S, S, ctx, chunk=chunk)
        for s in states:
            s["pad_v"] = pad_v
        return states

    passing = []
    for pad_v in ((False, True) if "mla" in model.kinds and phase == "prefill" else (False,)):
        ref = None
        try:
            with torch.inference_mode():
                from torch.nn.attention import sdpa_kernel

                with sdpa_kernel([SDPBackend.MATH]):
                    set_fusion(False)
                    ref = model.step(tokens, fresh_states(pad_v), phase, ctx, SDPBackend.MATH)
        finally:
            set_fusion(R.fused)
        for label, backend in order:
            try:
                with torch.inference_mode():
                    out = model.step(tokens, fresh_states(pad_v), phase, ctx, backend)
                torch.cuda.synchronize()
            except Exception as exc:
                log(f"  {model.name} {phase}: {label} (pad_v={pad_v}) refused: {str(exc).splitlines()[0][:140]}")
                continue
            err = rel_err(out, ref)
            # every rank must keep the same backends: each is timed with collectives in its graph
            ok = bool(agreed(int(bool(torch.isfinite(out).all()) and err < STEP_BOUND), "MIN"))
            R.checks.append((f"{model.name} {phase} step via {label} vs math reference", err, ok))
            extra = (f" P={chunk}" if chunk else "") + (f" style={R.style}" if R.style != "engine" else "")
            log(f"CHECK {model.name} {phase} B={B} S={S} ctx={ctx}{extra} {label} pad_v={pad_v} fused={R.fused}: "
                f"rel_err {err:.3e} (bound {STEP_BOUND:g}) {'PASS' if ok else 'FAIL'}")
            if ok:
                passing.append((label, backend, pad_v))
        if passing:
            return passing
    return passing


def step_fn(model, phase, B, n, backend, pad_v, chunk=0):
    """One step at (B, n) (n: context for decode and mixed, prompt for prefill; chunk: a mixed step's
    prefill tokens) as a closure over freshly built states and tokens from this rank's vocabulary shard;
    dropping the closure frees the states."""
    ctx, S = (0, n) if phase == "prefill" else (n, 1)
    states = model.state(B, ctx + S, S, ctx, chunk=chunk)
    for st in states:
        st["pad_v"] = pad_v
    tokens = torch.randint(0, model.m["vocab"], (1, chunk + B) if chunk else (B, S), device=DEV)

    def fn():
        with torch.inference_mode():
            return model.step(tokens, states, phase, ctx, backend)

    return fn


def fastest_backend(model, phase, candidates, B, n, chunk=0):
    """Of the backends that pass the check, the one whose step is fastest at (B, n), the phase's heaviest
    point, as a serving engine picks its attention backend per model: cuDNN's decode at head dim 256 is
    slower than FlashAttention-2's (measurements/h200-torch-head-dim.jsonl) while at 128 it is faster."""
    if len(candidates) == 1:
        return candidates[0]
    times = {}
    for label, backend, pad_v in candidates:
        fn = step_fn(model, phase, B, n, backend, pad_v, chunk)
        # the slowest rank's time, so that all ranks make the same choice
        times[label] = agreed(round(time_step(fn, 0.1)[0]["med"] * 1e6), "MAX") * 1e-6
        fn = None  # frees its states before the next backend's
        torch.cuda.empty_cache()
    best = min(candidates, key=lambda c: times[c[0]])
    log(f"  {model.name} {phase}: backend by speed at B={B} n={n}{f' P={chunk}' if chunk else ''}: "
        + ", ".join(f"{k} {v * 1e3:.3f} ms" for k, v in times.items()) + f" -> {best[0]}")
    return best


def check_cache_consistency(model):
    """Logits of a prefill of S tokens must equal those of a prefill of S-1 then one decode step: checks
    the cache writes, rope positions and (MLA) the absorbed decode against the expanded prefill."""
    from torch.nn.attention import SDPBackend

    B, S = 2, 65 + (model.m.get("window") or 0)  # past the window: the ring buffer and its decode
    tokens = torch.randint(0, model.m["vocab"], (B, S), device=DEV)
    with torch.inference_mode():
        st = model.state(B, S, S, 0)
        for s in st:
            s["pad_v"] = False
        full = model.step(tokens, st, "prefill", 0, SDPBackend.MATH)
        st = model.state(B, S, S - 1, 0)
        for s in st:
            s["pad_v"] = False
        model.step(tokens[:, :-1], st, "prefill", 0, SDPBackend.MATH)
        model.set_positions(st, torch.arange(S - 1, S, device=DEV).repeat(B))
        last = model.step(tokens[:, -1:], st, "decode", S - 1, SDPBackend.MATH)
    err = rel_err(last, full)
    ok = bool(torch.isfinite(last).all()) and err < 3e-2
    R.checks.append((f"{model.name} prefill(S) vs prefill(S-1)+decode", err, ok))
    log(f"CHECK {model.name} logits of prefill(S={S}) vs prefill(S-1) + decode step: rel_err {err:.3e} "
        f"(bound 3e-2) {'PASS' if ok else 'FAIL'}")
    return ok


def check_styles(model) -> bool:
    """--style eager, before the timed points: the eager step against the engine step on the same weights (a
    decode of 2 sequences at context 257 and a prefill of 300 tokens, math-backend attention in both, the
    engine's elementwise work as it runs it: torch.compile'd unless --no-fuse). Re-lays the model's weights
    out for the eager style (Model.to_eager) between the two."""
    from torch.nn.attention import SDPBackend

    points = [("decode", 2, 257, 1), ("prefill", 1, 0, 300)]
    tokens = {ph: torch.randint(0, model.m["vocab"], (B, S), device=DEV) for ph, B, _, S in points}
    outs = {}
    for style in ("engine", "eager"):
        if style == "eager":
            model.to_eager()
        for ph, B, ctx, S in points:
            torch.manual_seed(13)  # the same cache contents (and GDN state) for both styles
            st = model.state(B, ctx + S, S, ctx)
            for s in st:
                s["pad_v"] = False
            with torch.inference_mode():
                outs[(style, ph)] = model.step(tokens[ph], st, ph, ctx, SDPBackend.MATH)
    passed = True
    for ph, B, ctx, S in points:
        err = rel_err(outs[("eager", ph)], outs[("engine", ph)])
        ok = bool(torch.isfinite(outs[("eager", ph)]).all()) and err < STEP_BOUND
        passed = passed and ok
        R.checks.append((f"{model.name} {ph} eager-style step vs engine-style step", err, ok))
        log(f"CHECK {model.name} {ph} B={B} S={S} ctx={ctx} eager style vs engine style (same weights, math "
            f"attention, fused={R.fused}): rel_err {err:.3e} (bound {STEP_BOUND:g}) {'PASS' if ok else 'FAIL'}")
    return passed


def check_mixed_consistency(model) -> bool:
    """A mixed step (a 37-token chunk of a fresh request + 3 decodes at context 9) against the chunk
    prefilled alone and the decodes stepped alone on the same caches: the logits of the chunk's last token
    and of each decode must be what each gets alone (checks the row split, the two caches, the positions).
    The short context makes a decode reading one cache slot too few or too many show (on a 3-layer CPU
    model: 0.15 at context 9, 0.015 at 129). Math-backend attention; the bound is the prefill(S) vs
    prefill(S-1)+decode check's."""
    from torch.nn.attention import SDPBackend

    P, B, ctx = 37, 3, 9
    chunk = torch.randint(0, model.m["vocab"], (1, P), device=DEV)
    dec = torch.randint(0, model.m["vocab"], (B, 1), device=DEV)
    with torch.inference_mode():
        torch.manual_seed(17)
        st = model.state(B, ctx + 1, 1, ctx, chunk=P)
        for s in st:
            s["pad_v"] = False
        mixed = model.step(torch.cat((chunk[0], dec[:, 0]))[None], st, "mixed", ctx, SDPBackend.MATH)
        st = model.state(1, P, P, 0)
        for s in st:
            s["pad_v"] = False
        alone = [model.step(chunk, st, "prefill", 0, SDPBackend.MATH)]
        torch.manual_seed(17)
        st = model.state(B, ctx + 1, 1, ctx)
        for s in st:
            s["pad_v"] = False
        alone.append(model.step(dec, st, "decode", ctx, SDPBackend.MATH))
    ref = torch.cat(alone)
    err = rel_err(mixed, ref)
    ok = bool(torch.isfinite(mixed).all()) and mixed.shape == ref.shape and err < 3e-2
    R.checks.append((f"{model.name} mixed step vs chunk prefill + decodes alone", err, ok))
    log(f"CHECK {model.name} mixed step (P={P} + B={B} at ctx={ctx}) vs the chunk's prefill and the decodes "
        f"alone{f' style={R.style}' if R.style != 'engine' else ''}: rel_err {err:.3e} (bound 3e-2) "
        f"{'PASS' if ok else 'FAIL'}")
    return ok


def check_sliding_prefill(model) -> bool:
    """A prefill longer than the window through FlexAttention's sliding block mask against SDPA's math
    backend with the band as a boolean mask (whole-model logits)."""
    from torch.nn.attention import SDPBackend

    B, S = 1, model.m["window"] + 65
    tokens = torch.randint(0, model.m["vocab"], (B, S), device=DEV)
    outs = []
    with torch.inference_mode():
        for backend in (SDPBackend.MATH, SDPBackend.CUDNN_ATTENTION):  # (cuDNN: unused past the window)
            st = model.state(B, S, S, 0)
            for s in st:
                s["pad_v"] = False
            outs.append(model.step(tokens, st, "prefill", 0, backend))
    err = rel_err(outs[1], outs[0])
    ok = bool(torch.isfinite(outs[1]).all()) and err < STEP_BOUND
    R.checks.append((f"{model.name} sliding prefill via flex vs math band mask", err, ok))
    log(f"CHECK {model.name} prefill S={S} past the window: flex vs math band mask: rel_err {err:.3e} "
        f"(bound {STEP_BOUND:g}) {'PASS' if ok else 'FAIL'}")
    return ok


def check_mla_kernel(model, kernel: str) -> bool:
    """A fused MLA decode kernel ("triton": mla_decode.py; "flashmla": flashmla_decode.py) against the
    batched-GEMM form on a whole decode step (odd context, a partial tile, several splits); the fused kernel
    is used only if it agrees."""
    from torch.nn.attention import SDPBackend

    B, ctx = MLA_TRITON_MIN_BATCH, 301
    tokens = torch.randint(0, model.m["vocab"], (B, 1), device=DEV)
    outs = []
    flag = "mla_flash" if kernel == "flashmla" else "mla_triton"
    try:
        for use in (False, True):
            setattr(R, flag, use)
            torch.manual_seed(5)
            st = model.state(B, ctx + 1, 1, ctx)
            with torch.inference_mode():
                outs.append(model.step(tokens, st, "decode", ctx, SDPBackend.MATH))
        err = rel_err(outs[1], outs[0])
    except Exception as exc:
        log(f"  {kernel} MLA decode unavailable ({str(exc).splitlines()[0][:160]})")
        return False
    finally:
        setattr(R, flag, False)
    # whole-model logits, so the bound is the step checks' (rounding compounds through the layers: 1.7-2.0e-2
    # over DeepSeek-like 16 layers, 3.1-3.2e-2 for both fused kernels over Kimi-like 27); each kernel alone
    # passes its own check against the math (flashmla_decode.py: 2e-3; mla_decode.py: bound 2e-2 in bf16)
    ok = bool(torch.isfinite(outs[1]).all()) and err < STEP_BOUND
    R.checks.append((f"{model.name} {kernel} MLA decode vs batched GEMMs", err, ok))
    log(f"CHECK {model.name} decode step, {kernel} MLA kernel vs batched GEMMs: rel_err {err:.3e} "
        f"(bound {STEP_BOUND:g}) {'PASS' if ok else 'FAIL'}")
    return ok


def flashmla_usable() -> bool:
    try:
        from flashmla_decode import load
    except ImportError:
        return False
    return load() is not None


def emit(rec):
    R.out.write(json.dumps(rec) + "\n")
    R.out.flush()
    R.count += 1


def agreed(value: int, op: str) -> int:
    """`value` reduced over the tensor-parallel ranks with `op` ("MIN" or "MAX"); itself on one GPU. A
    decision that differs between ranks leaves some of them waiting in a collective forever."""
    if R.tp == 1:
        return value
    import torch.distributed as dist

    t = torch.tensor([value], device=DEV)
    dist.all_reduce(t, op=getattr(dist.ReduceOp, op))
    return int(t.item())


def past_model_end() -> bool:
    """Whether this model's time is up, decided by all ranks together."""
    return bool(agreed(int(time.time() > R.model_end), "MAX"))


HOST_BLOCK_POINTS = {"decode": (8, 2048, 0), "prefill": (1, 1024, 0), "mixed": (8, 2048, 512)}  # (B, n, chunk)
HOST_CALLS_PER_BLOCK = 10  # an eager layer launches up to ~60 kernels: 10 calls stay far below the launch queue


def host_blocks(model, chosen) -> None:
    """--host-blocks: the host's time to issue each part of an eager step on its own (the embedding and rotary
    tables, one mixer of each kind, one FFN, the final norm and LM head), per phase at one point. Blocks of
    HOST_CALLS_PER_BLOCK calls between perf_counter reads, the device synchronised before and after each, so
    the host never waits on the GPU: the parts' issue costs, which costsim composes into a whole step's
    (the whole-step records are the check of that composition). Records: op host_call."""
    for phase, (B, n, chunk) in HOST_BLOCK_POINTS.items():
        if phase in chosen and chosen[phase][0] is not None:
            host_parts(model, phase, chosen[phase][0], chosen[phase][1], B, n, chunk)
            torch.cuda.empty_cache()


def host_parts(model, phase, label, backend, B, n, chunk) -> None:
    from torch.nn.attention import sdpa_kernel

    ctx, S = (0, n) if phase == "prefill" else (n, 1)
    states = model.state(B, ctx + S, S, ctx, chunk=chunk)
    tokens = torch.randint(0, model.m["vocab"], (1, chunk + B) if chunk else (B, S), device=DEV)
    with torch.inference_mode(), sdpa_kernel([backend]):
        x, cos, sin = model.eager_embed(tokens, states)
        parts = {"embed": lambda: model.eager_embed(tokens, states),
                 "head": lambda: model.eager_head(x, states, phase)}
        for kind in sorted(set(model.kinds)):
            i = model.kinds.index(kind)
            parts[f"mixer:{kind}"] = (lambda i=i, kind=kind: model.eager_mixer(
                kind, model.layers[i], states[i], x, phase, ctx, backend, cos, sin))
        parts["ffn"] = lambda: model.eager_ffn(model.layers[0], x)
        for part, fn in parts.items():
            fn()
            torch.cuda.synchronize()
            kernels = kernels_launched(fn)
            per_call = host_seconds_per_call(fn, 10 if R.quick else 30, HOST_CALLS_PER_BLOCK)
            rec = {"op": "host_call", "call": f"eager_{part}", "model": model.m["model"], "model_name": model.name,
                   "phase": phase, "batch": B, "context": ctx, "seq_len": S, "kernels_per_call": kernels,
                   "hardware": R.hardware, "gpu_name": R.gpu_name, "dtype": "bf16", "source": "torch-host-cost",
                   "time_s": per_call[len(per_call) // 2], "p10_s": per_call[len(per_call) // 10],
                   "p90_s": per_call[(9 * len(per_call)) // 10], "blocks": len(per_call),
                   "calls_per_block": HOST_CALLS_PER_BLOCK, "attention_kernel": label, "step_style": "eager"}
            if chunk:
                rec["prefill_tokens"] = chunk
            emit(rec)
            log(f"  host {model.name:22s} {phase:7s} {part:18s} {rec['time_s'] * 1e6:8.1f} us/call "
                f"(p10 {rec['p10_s'] * 1e6:.1f}, p90 {rec['p90_s'] * 1e6:.1f}), {kernels} kernels")


def attention_kernel_label(m, phase, B, S, label, pad_v) -> str:
    """What ran the attention of a timed step, for the record."""
    if m["kind"] in ("mla", "hybrid_kda") and phase == "decode":
        return mla_decode_kernel(B)
    window = m.get("window") or 0
    if phase == "prefill" and 0 < window < S:
        return "torch-flex-sliding"  # the SDPA backend chosen is not used past the window
    return label + ("+pad_v" if pad_v else "")


def run_model(name):
    m = MODELS[name]
    log(f"=== {name}: building ({m['layers']} layers)")
    if R.fused:
        torch._dynamo.reset()  # compiled kernels specialise on this model's feature sizes
        set_fusion(True)
    torch.manual_seed(0)
    model = Model(name)
    log(f"  weights {model.weight_bytes / 2**30:.2f} GiB")
    if R.style == "eager":
        if m["kind"] not in EAGER_KINDS:
            log(f"  {name}: --style eager is implemented for {', '.join(EAGER_KINDS)} models only; skipped")
            R.errors.append((name, "no eager style for this model kind"))
            return
        if not check_styles(model):  # (re-lays the weights out for the eager style)
            R.errors.append((name, "eager-style step disagrees with the engine-style step"))
            return
    recurrent = m["kind"] in ("hybrid_gdn", "hybrid_kda")
    if not recurrent and not check_cache_consistency(model):  # (a recurrent state is not carried over)
        R.errors.append((name, "cache consistency check failed"))
        return
    if m.get("window") and not check_sliding_prefill(model):
        R.errors.append((name, "sliding-window prefill check failed"))
        return
    if "mla" in model.kinds:
        # FlashMLA where its library is built (microbench/build_flashmla.sh), else the Triton kernel
        R.mla_pad = 64 if flashmla_usable() else 8
        R.mla_flash = R.mla_pad == 64 and check_mla_kernel(model, "flashmla")
        R.mla_triton = not R.mla_flash and check_mla_kernel(model, "triton")
        chosen = "flashmla" if R.mla_flash else "triton from batch 16" if R.mla_triton else "bmm"
        log(f"  MLA decode attention: {chosen}")
        if R.fused:
            # Timed points compile from a clean state, as they did before the MLA kernel check existed: after
            # that check's extra shapes, the batched-GEMM decode at batch 1 ran 6.31 / 7.15 ms (contexts 4k /
            # 16k, H200, 453 kernels) against 6.06 / 6.42 ms (421 kernels) without it (suspected: more dims
            # compiled as dynamic, and a split softmax)
            torch._dynamo.reset()
            set_fusion(True)
    mix_kinds = sorted(set(model.kinds))
    decode_pts, prefill_pts = R.points.get("decode", m["decode"]), R.points.get("prefill", m["prefill"])
    # (phase, batch, n, chunk): n is the context (decode, mixed) or the prompt (prefill); chunk a mixed step's
    # prefill tokens
    points = [("decode", b, c, 0) for b, c in decode_pts] + [("prefill", b, s, 0) for b, s in prefill_pts]
    points = [p for p in points if p[0] in R.phases]
    if R.quick:
        points = [("decode", *decode_pts[0], 0), ("prefill", *prefill_pts[0], 0)]
    if "mixed" in R.phases:
        if set(model.kinds) <= {"attn", "gated_attn"} and not m.get("window"):
            mixed_pts = R.points.get("mixed", MIXED_POINTS)
            points += [("mixed", b, c, chunk) for chunk, b, c in mixed_pts[:1 if R.quick else None]]
        else:
            log(f"  {name}: mixed steps run for softmax-attention models without a window only; none here")
    kernels = {}
    chosen = {}
    for phase, B, n, chunk in points:
        if past_model_end():
            log(f"  {name}: model budget reached, skipping the remaining points")
            break
        if phase not in chosen:
            passing = passing_backends(model, phase)
            if phase == "mixed" and passing and not check_mixed_consistency(model):
                R.errors.append((name, "mixed-step consistency check failed"))
                passing = []
            if not passing:
                R.errors.append((name, f"no attention backend passed the {phase} check"))
                log(f"  {name} {phase}: no backend passed the check; not timed")
                chosen[phase] = (None, None, False)
            else:
                heaviest = max((p for p in points if p[0] == phase), key=point_weight)
                try:
                    chosen[phase] = fastest_backend(model, phase, passing, heaviest[1], heaviest[2], heaviest[3])
                except torch.OutOfMemoryError:  # that point will not run either (an 80 GB GPU)
                    torch.cuda.empty_cache()
                    chosen[phase] = passing[0]
                    log(f"  {name} {phase}: out of memory timing backends at the heaviest point; "
                        f"using {passing[0][0]}")
        label, backend, pad_v = chosen[phase]
        if label is None:
            continue
        ctx, S = (0, n) if phase == "prefill" else (n, 1)
        at = f"B={B} n={n}" + (f" P={chunk}" if chunk else "")
        try:
            fn = step_fn(model, phase, B, n, backend, pad_v, chunk)
            profiled = None
            if phase not in kernels or R.profile_all:
                fn()
                torch.cuda.synchronize()
                try:
                    kernels[phase], profiled, top = profile_step(fn)
                    log(f"  profile {phase} {at} (eager, device time by class, s): {profiled}")
                    for kname, sec, ncalls in top:
                        log(f"    {sec * 1e3:9.3f} ms {ncalls:5d}x {kernel_class(kname):11s} {kname[:140]}")
                except Exception as exc:  # the profiler is a nicety; never lose the timing to it
                    log(f"  profiler failed: {exc!r}")
                    kernels[phase] = None
            # eager steps are host-bound and jittery (a first H200 run: p10-p90 spread up to 55% of the median
            # over 17-29 calls of 0.6 s in all), so they get more calls
            target = (0.15 if R.quick else 0.6) * (4 if R.style == "eager" else 1)
            t, used_graph = time_step(fn, target)
        except torch.OutOfMemoryError:
            log(f"  {name} {phase} {at}: out of memory, skipped")
            fn = None  # the closure holds the states
            torch.cuda.empty_cache()
            continue
        except Exception as exc:
            log(f"  {name} {phase} {at}: {exc!r}\n{traceback.format_exc(limit=5)}")
            R.errors.append((name, repr(exc)))
            fn = None  # the closure holds the states
            torch.cuda.empty_cache()
            continue
        fn = None
        torch.cuda.empty_cache()
        rec = {"op": "model_step", "phase": phase, "model": m["model"], "model_name": name,
               "layers": m["layers"], "mixers": mix_kinds, "batch": B, "context": ctx, "seq_len": S,
               "hardware": R.hardware, "gpu_name": R.gpu_name, "dtype": "bf16", "source": "torch-model-step",
               "time_s": t["med"], "p10_s": t["p10"], "p90_s": t["p90"], "reps": t["reps"],
               "cuda_graph": used_graph, "fused_elementwise": R.fused and R.style == "engine",
               "kernels_per_step": kernels[phase],
               "attention_kernel": attention_kernel_label(m, phase, B, S, label, pad_v),
               "weights_bytes": model.weight_bytes, "step_style": R.style}
        if phase == "mixed":
            rec["prefill_tokens"] = chunk  # + `batch` decodes at `context`, one forward
        if R.style == "eager":
            # CUDA events around the eager call after a device sync: the host's launch cost is in time_s
            # wherever the GPU waited for it; host_call_s is the host's own time to issue the call
            rec["host_launch_included"] = True
            rec["host_call_s"] = t["host_med"]
            rec["host_probe_s"] = list(t["probe"])  # per launch, before and after the timed repetitions
            rec["pinned_cpu"] = R.pin_cpu
        if R.tp > 1:
            rec["layout"] = {"tp": R.tp}  # costsim predicts it with serving/layouts.py
            rec["weights_bytes_per_rank"] = rec.pop("weights_bytes")
        if profiled:
            rec["profile_s_by_class"] = profiled  # one eager step under the profiler
        if m["kind"] == "hybrid_gdn":
            rec["scan_kernel"] = "fla " + ("fused_recurrent_gated_delta_rule" if phase == "decode"
                                           else "chunk_gated_delta_rule")
            if R.style == "eager":
                rec["conv_kernel"] = "torch F.conv1d (HF's torch fallback)"
        if m["kind"] == "hybrid_kda":
            rec["scan_kernel"] = "fla " + ("fused_recurrent_kda" if phase == "decode" else "chunk_kda")
        emit(rec)
        log(f"  {name:22s} {phase:7s} B={B:4d} ctx={ctx:6d} S={S:6d}{f' P={chunk:5d}' if chunk else ''} "
            f"{t['med'] * 1e3:9.3f} ms (p10 {t['p10'] * 1e3:.3f}, p90 {t['p90'] * 1e3:.3f}, {t['reps']} reps, "
            f"graph={used_graph}, {kernels[phase]} kernels"
            + (f", style {R.style}, host call {t['host_med'] * 1e3:.3f} ms" if R.style == "eager" else "") + ")")
    if R.host_blocks and R.style == "eager" and not past_model_end():
        host_blocks(model, chosen)
    del model
    torch.cuda.empty_cache()


def main(argv=None):
    argv = sys.argv if argv is None else argv
    ap = common_parser(__doc__, 600.0, [n for n in MODELS if not MODELS[n].get("tp_only")])
    ap.add_argument("--no-fuse", action="store_true", help="plain eager elementwise ops (no torch.compile)")
    ap.add_argument("--profile-all", action="store_true",
                    help="profile one eager step at every point (default: the first point of each phase)")
    ap.add_argument("--host-blocks", action="store_true",
                    help="--style eager: also time the host's issue of each part of a step (op host_call records)")
    ap.add_argument("--pin-cpu", type=int, default=None,
                    help="--style eager: run on this one CPU core (the host issues every op; a thread moved "
                         "between cores issues them slower)")
    ap.add_argument("--profile-top", type=int, default=12, help="kernels listed per profiled point")
    ap.add_argument("--tp", type=int, default=1, help="tensor-parallel ranks; run under torchrun --nproc_per_node N")
    ap.add_argument("--attention", default="auto", choices=["auto", "torch-sdpa-cudnn", "torch-sdpa-flash"],
                    help="SDPA backend of the attention layers (auto: of those that pass the check, the faster at "
                         "the phase's heaviest point)")
    ap.add_argument("--phases", default="decode,prefill",
                    help="which phases to time (decode, prefill, mixed: a prefill chunk + decodes in one step)")
    ap.add_argument("--style", default="engine", choices=["engine", "eager"],
                    help="engine: fused QKV / gate-up GEMMs, torch.compile'd elementwise, CUDA graphs; eager: a "
                         "plain PyTorch / HF-transformers step, op for op, no graph, host launch cost included")
    ap.add_argument("--decode-points", default=None, help="BxC,... (batch x context) instead of model_shapes.py's")
    ap.add_argument("--prefill-points", default=None, help="BxS,... (batch x prompt) instead of model_shapes.py's")
    ap.add_argument("--mixed-points", default=None,
                    help="PxBxC,... (chunk tokens x decodes x context; default "
                         + ",".join("x".join(map(str, p)) for p in MIXED_POINTS) + ")")
    a = ap.parse_args(argv[1:])
    R.attention = a.attention
    R.phases = frozenset(a.phases.split(","))
    if R.phases - {"decode", "prefill", "mixed"}:
        ap.error(f"--phases: unknown {', '.join(sorted(R.phases - {'decode', 'prefill', 'mixed'}))}")
    R.style = a.style
    for phase, spec, width in (("decode", a.decode_points, 2), ("prefill", a.prefill_points, 2),
                               ("mixed", a.mixed_points, 3)):
        if spec:
            try:
                pts = [tuple(int(v) for v in item.lower().split("x")) for item in spec.split(",") if item]
            except ValueError:
                ap.error(f"--{phase}-points: integers joined by x, e.g. {'512x8x2048' if width == 3 else '8x4096'}")
            if not pts or any(len(p) != width or min(p) < 1 for p in pts):
                ap.error(f"--{phase}-points: {width} positive integers per point, joined by x")
            R.points[phase] = pts
    if a.tp > 1:
        import torch.distributed as dist

        local = int(os.environ.get("LOCAL_RANK", 0))
        torch.cuda.set_device(local)
        dist.init_process_group("nccl")
        if dist.get_world_size() != a.tp:
            raise SystemExit(f"--tp {a.tp} needs torchrun --nproc_per_node {a.tp} (world size {dist.get_world_size()})")
        R.tp, R.rank = a.tp, dist.get_rank()
    R.t0 = time.time()
    R.quick = a.quick
    R.profile_all = a.profile_all
    R.host_blocks = a.host_blocks
    R.pin_cpu = a.pin_cpu
    if a.pin_cpu is not None:
        os.sched_setaffinity(0, {a.pin_cpu})
    R.profile_top = a.profile_top
    R.deadline = a.deadline or (90.0 if a.quick else 600.0)
    R.logf = open(a.log, "w") if a.log else None  # noqa: SIM115
    if not torch.cuda.is_available():
        print("model_step.py: no CUDA GPU visible to PyTorch", file=sys.stderr)
        return 2
    R.gpu_name = torch.cuda.get_device_name(0)
    R.hardware = hardware_slug(R.gpu_name)
    R.fused = not a.no_fuse
    set_fusion(R.fused)
    if R.rank != 0:  # every rank runs the same steps (collectives must match); rank 0 writes
        a.out, a.log = os.devnull, None
    R.out = sys.stdout if a.out == "-" else open(a.out, "w")  # noqa: SIM115
    # an eager step's time is mostly the host's (its CPU is named: two H200 machines gave 0.9-1.8x apart)
    host = {"host_cpu": host_cpu()} if R.style == "eager" else {}
    h = gpu_header(R.gpu_name, R.hardware, argv, R.quick, fused_elementwise=R.fused and R.style == "engine",
                   deadline_s=R.deadline, tp=R.tp, step_style=R.style, **host)
    R.out.write(json.dumps(h) + "\n")
    log(json.dumps(h))
    names = [n for n in MODELS if n in a.only.split(",")]
    for i, name in enumerate(names):
        left = R.t0 + R.deadline - time.time()
        if left <= 0:
            log(f"deadline reached before {name}")
            R.errors.append((name, "deadline"))
            continue
        R.model_end = time.time() + left / (len(names) - i)
        try:
            run_model(name)
        except Exception as exc:
            log(f"{name} crashed: {exc!r}\n{traceback.format_exc()}")
            R.errors.append((name, repr(exc)))
        torch.cuda.empty_cache()
    nfail = sum(1 for c in R.checks if not c[2])
    log(f"=== summary: checks {len(R.checks) - nfail}/{len(R.checks)} pass, {R.count} records, "
        f"wall {time.time() - R.t0:.0f} s")
    for name, msg in R.errors:
        log(f"  error: {name}: {msg}")
    if R.out is not sys.stdout:
        R.out.close()
    return 4 if nfail else (3 if R.errors else 0)


if __name__ == "__main__":
    sys.exit(main())
