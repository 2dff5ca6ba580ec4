#!/usr/bin/env python3
"""Production-kernel counterpart of the CUDA microbenchmark (issue 4 item 2).

Times the ops of ``costsim_bench`` through the kernels people deploy, on the local GPU:

- ``attention_prefill`` / ``attention_decode`` through ``torch.nn.functional.scaled_dot_product_attention``
  with the backend pinned by ``torch.nn.attention.sdpa_kernel`` (``torch-sdpa-flash``,
  ``torch-sdpa-cudnn``; a backend that cannot run a shape raises, so a record is never mislabelled);
- ``attention_prefill`` through FlexAttention (``torch-flex``, compiled): causal, sliding window, and
  top-k block-sparse masks;
- ``linear_prefill`` / ``linear_decode`` through flash-linear-attention (``fla``): chunked and
  fused-recurrent gated delta rule, KDA, simple GLA (lightning) and GLA;
- MLA ``attention_decode`` through FlashMLA (``flashmla``), where ``microbench/build_flashmla.sh`` has
  built its library (``microbench/flashmla_decode.py``); skipped otherwise.

Every op is checked against a naive fp32 reference on a small shape before it is timed; a failing or
crashing check skips that op (logged, never recorded). Records follow ``docs/contracts.md``
("Measurement records") with the extra fields of ``microbench/NOTES.md``.

    python3 microbench/torch_kernels.py [--quick] [--out FILE.jsonl] [--log FILE] [--deadline S]
                                        [--only copy,sdpa_prefill,sdpa_decode,flex,fla_prefill,fla_decode,
                                                flashmla_decode]
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
import traceback

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_env import common_parser, gpu_header, hardware_slug, write_log

SECTIONS = ("copy", "sdpa_prefill", "sdpa_decode", "sdpa_decode_split", "sdpa_decode_head_dim", "fla_decode",
            "fla_prefill", "flex", "flashmla_decode")
# relative weight of each section in the time left (a section may use less)
WEIGHTS = {"copy": 0.3, "sdpa_prefill": 1.2, "sdpa_decode": 1.2, "sdpa_decode_split": 0.4,
           "sdpa_decode_head_dim": 0.6, "fla_decode": 1.0, "fla_prefill": 2.5, "flex": 2.0, "flashmla_decode": 0.6}


class Ctx:
    quick = False
    out = None
    logf = None
    hardware = ""
    gpu_name = ""
    l2_bytes = 50 << 20
    copy_bw = 0.0
    t_start = 0.0
    deadline = 240.0
    section_end = 0.0

    def __init__(self):
        self.checks = []  # (name, err, bound, ok)
        self.skipped = []  # (what, why)
        self.errors = []  # (section, message)
        self.counts = {}


C = Ctx()


def log(msg: str) -> None:
    write_log(msg, C.t_start, C.logf, width=7)


def past_section_end() -> bool:
    return time.time() > C.section_end


def sig(x: float) -> float:
    return float(f"{x:.6g}")


def emit(op: str, shape: dict, dtype: str, source: str, t: dict, flops: float, nbytes: float, extra=None):
    rec = {"op": op}
    rec.update(shape)
    if extra:
        rec.update(extra)
    rec.update(
        hardware=C.hardware,
        gpu_name=C.gpu_name,
        dtype=dtype,
        source=source,
        time_s=sig(t["med"]),
        p10_s=sig(t["p10"]),
        p90_s=sig(t["p90"]),
        reps=t["reps"],
        queued=t["queued"],
    )
    if flops > 0:
        rec.update(flops=sig(flops), achieved_tflops=sig(flops / t["med"] / 1e12))
    if nbytes > 0:
        rec.update(bytes_moved=sig(nbytes), achieved_gb_s=sig(nbytes / t["med"] / 1e9))
        if C.copy_bw > 0:
            rec["frac_copy_bw"] = sig(nbytes / t["med"] / 1e9 / C.copy_bw)
    C.out.write(json.dumps(rec) + "\n")
    C.out.flush()
    key = (op, source)
    C.counts[key] = C.counts.get(key, 0) + 1
    return rec


# ---------------------------------------------------------------------------------------------- timing
def bench(fn, nsets: int, target_s: float | None = None) -> dict:
    """fn(i) runs repetition i on input set i % nsets. CUDA events around every repetition after a
    warm-up; short kernels are queued behind a torch.cuda._sleep so the events see back-to-back GPU
    execution rather than the host's launch rate (as the CUDA bench does with its spin kernel)."""
    if target_s is None:
        target_s = 0.008 if C.quick else 0.03
    fn(0)
    torch.cuda.synchronize()
    fn(1 % nsets)
    torch.cuda.synchronize()
    s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    t0 = time.perf_counter()
    s.record()
    for i in range(3):
        fn(i % nsets)
    e.record()
    host = (time.perf_counter() - t0) / 3  # host enqueue time per call
    torch.cuda.synchronize()
    est = max(s.elapsed_time(e) / 1e3 / 3, 1e-7)
    reps = int(min(max(target_s / est, 5), 500 if C.quick else 2000))
    queued = est < 2 * host + 50e-6
    evs = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)) for _ in range(reps)]
    i = 0
    per_call = host + 20e-6
    while i < reps:
        nb = reps - i
        if queued:
            nb = max(1, min(nb, int(0.02 / per_call)))
            torch.cuda._sleep(int(min(nb * per_call * 1.3 + 1e-3, 0.06) * 2.0e9))
        for _ in range(nb):
            evs[i][0].record()
            fn(i % nsets)
            evs[i][1].record()
            i += 1
        torch.cuda.synchronize()
    ts = sorted(a.elapsed_time(b) / 1e3 for a, b in evs)

    def q(p):
        return ts[min(len(ts) - 1, int(p * (len(ts) - 1) + 0.5))]

    return {"med": q(0.5), "p10": q(0.1), "p90": q(0.9), "reps": reps, "queued": queued}


def nsets_for(set_bytes: float, cap_bytes: float = 8e9) -> int:
    n = math.ceil(3 * C.l2_bytes / max(set_bytes, 1))
    return int(max(1, min(n, 64, cap_bytes // max(set_bytes, 1))))


def rel_err(out: torch.Tensor, ref: torch.Tensor) -> float:
    o = out.double()
    r = ref.double()
    if not torch.isfinite(o).all():
        return float("nan")
    return float((o - r).norm() / r.norm())


def check(name: str, out, ref, bound: float) -> bool:
    err = rel_err(out, ref)
    ok = err == err and err <= bound
    C.checks.append((name, err, bound, ok))
    log(f"CHECK {name}: rel_err {err:.3e} (bound {bound:g}) {'PASS' if ok else 'FAIL'}")
    return ok


def rnd(*shape, dtype=torch.bfloat16):
    return torch.randn(*shape, device="cuda", dtype=dtype)


# ------------------------------------------------------------------------------------------------ copy
def sec_copy():
    n = 1 << 30
    src = torch.randint(0, 256, (n,), dtype=torch.uint8, device="cuda")
    dst = torch.empty_like(src)
    dst.copy_(src)
    torch.cuda.synchronize()
    ok = bool(torch.equal(dst, src))
    C.checks.append(("copy 1 GiB", 0.0 if ok else 1.0, 0.0, ok))
    log(f"CHECK copy 1 GiB: {'PASS' if ok else 'FAIL'}")
    if not ok:
        return
    t = bench(lambda i: dst.copy_(src), 1, 0.05)
    C.copy_bw = 2 * n / t["med"] / 1e9
    emit("copy", {"bytes": n}, "int8", "torch", t, 0, 2 * n, {"mode": "copy", "l2_rotated": True})
    log(f"copy 1 GiB (torch copy_): {t['med'] * 1e3:.3f} ms, {C.copy_bw:.0f} GB/s (read+write)")
    src = dst = None
    torch.cuda.empty_cache()


# ------------------------------------------------------------------------------------ attention helpers
def naive_attn(q, k, v, mask=None, causal=False):
    """q [B,H,Sq,D], k/v [B,Hkv,Sk,D]; fp32; mask broadcastable to [B,H,Sq,Sk] (True = keep)."""
    g = q.shape[1] // k.shape[1]
    qf, kf, vf = q.float(), k.float().repeat_interleave(g, 1), v.float().repeat_interleave(g, 1)
    s = (qf @ kf.transpose(-1, -2)) * (q.shape[-1] ** -0.5)
    if causal:
        sq, sk = s.shape[-2], s.shape[-1]
        cm = torch.ones(sq, sk, dtype=torch.bool, device=q.device).tril(sk - sq)
        s = s.masked_fill(~cm, float("-inf"))
    if mask is not None:
        s = s.masked_fill(~mask, float("-inf"))
    return torch.softmax(s, -1) @ vf


def sdpa_backends():
    from torch.nn.attention import SDPBackend

    return [("torch-sdpa-flash", SDPBackend.FLASH_ATTENTION), ("torch-sdpa-cudnn", SDPBackend.CUDNN_ATTENTION)]


def sdpa_call(backend, gqa_mode, q, k, v, causal):
    """gqa_mode "native": enable_gqa=True on [B,Hkv,..] K/V; "expanded": K/V already expanded to the query
    heads (done once, outside the timed region)."""
    from torch.nn.attention import sdpa_kernel

    with sdpa_kernel([backend]):
        if gqa_mode == "native":
            return F.scaled_dot_product_attention(q, k, v, is_causal=causal, enable_gqa=True)
        return F.scaled_dot_product_attention(q, k, v, is_causal=causal)


def expand_kv(t, g, dim):
    return t if g == 1 else t.repeat_interleave(g, dim)


def sdpa_mode_and_check(source, backend, B, H, Hkv, Sq, Sk, causal, what, D=128):
    """Finds a GQA mode that the pinned backend runs (native enable_gqa first), checks it; returns the
    mode or None."""
    q, k, v = rnd(B, H, Sq, D), rnd(B, Hkv, Sk, D), rnd(B, Hkv, Sk, D)
    ref = naive_attn(q, k, v, causal=causal)
    for mode in ("native", "expanded") if Hkv != H else ("native",):
        try:
            g = H // Hkv if mode == "expanded" else 1
            out = sdpa_call(backend, mode, q, expand_kv(k, g, 1), expand_kv(v, g, 1), causal)
            torch.cuda.synchronize()
        except Exception as exc:  # the backend refuses this shape: try the next mode
            log(f"{source} {what} gqa={mode}: backend refused ({str(exc).splitlines()[0][:160]})")
            continue
        name = f"{source} {what} B={B} H={H}/{Hkv} Sq={Sq} Sk={Sk} gqa={mode}"
        return mode if check(name, out, ref, 2e-2) else None
    C.skipped.append((f"{source} {what} H={H}/{Hkv}", "backend runs no GQA mode for this shape"))
    return None


PREFILL_POINTS = [
    (1, 1024),
    (1, 2048),
    (1, 4096),
    (1, 8192),
    (1, 16384),
    (1, 32768),
    (2, 8192),
    (4, 4096),
    (8, 2048),
    (16, 1024),
]


def causal_pairs(S):
    return S * (S + 1) / 2


# -------------------------------------------------------------------------------------- SDPA prefill
def sec_sdpa_prefill():
    cfgs = [(32, 8, True, "causal"), (64, 8, True, "causal"), (32, 8, False, "full")]
    points = [(1, 4096), (4, 4096)] if C.quick else PREFILL_POINTS
    D = 128
    for source, backend in sdpa_backends():
        for H, Hkv, causal, variant in cfgs:
            if past_section_end():
                log("sdpa_prefill: section budget reached")
                return
            try:
                mode = sdpa_mode_and_check(source, backend, 1, H, Hkv, 1000, 1000, causal, f"prefill {variant}")
            except Exception as exc:
                log(f"{source} prefill check crashed: {exc!r}")
                C.skipped.append((f"{source} prefill {variant} H={H}/{Hkv}", "check crashed"))
                continue
            if mode is None:
                continue
            for B, S in points:
                if past_section_end():
                    log("sdpa_prefill: section budget reached")
                    return
                qn, kn = B * H * S * D, B * Hkv * S * D
                sets = nsets_for((2 * qn + 2 * kn) * 2)
                qs, ks, vs = rnd(sets, B, H, S, D), rnd(sets, B, Hkv, S, D), rnd(sets, B, Hkv, S, D)
                if mode == "expanded":
                    ks, vs = expand_kv(ks, H // Hkv, 2), expand_kv(vs, H // Hkv, 2)
                try:
                    t = bench(
                        lambda i, b=backend, m=mode, q=qs, k=ks, v=vs, c=causal: sdpa_call(b, m, q[i], k[i], v[i], c),
                        sets,
                    )
                except Exception as exc:
                    log(f"{source} prefill B={B} S={S}: {str(exc).splitlines()[0][:200]}")
                    C.skipped.append((f"{source} prefill {variant} B={B} S={S}", "raised"))
                    continue
                finally:
                    qs = ks = vs = None
                pairs = causal_pairs(S) if causal else float(S) * S
                flops = 4.0 * D * pairs * B * H
                nbytes = (2.0 * qn + 2.0 * kn) * 2
                emit(
                    "attention_prefill",
                    dict(batch=B, seq_len=S, heads=H, kv_heads=Hkv, head_dim=D, causal=causal, window=0),
                    "bf16",
                    source,
                    t,
                    flops,
                    nbytes,
                    {"variant": variant, "gqa_mode": mode},
                )
                log(
                    f"{source:17s} prefill {variant:6s} H={H}/{Hkv} B={B:2d} S={S:6d} {t['med'] * 1e3:9.3f} ms "
                    f"{flops / t['med'] / 1e12:6.1f} TFLOP/s"
                )
            torch.cuda.empty_cache()


# --------------------------------------------------------------------------------------- SDPA decode
def sec_sdpa_decode():
    cfgs = [(32, 8, "gqa_32q_8kv"), (64, 8, "gqa_64q_8kv")]
    ctxs = [1024, 2048, 4096, 8192, 16384, 32768, 65536, 131072]
    Bs = [1, 4, 16, 64]
    if C.quick:
        ctxs, Bs = [4096, 32768], [1, 16]
    sdpa_decode_grid("sdpa_decode", sdpa_backends(), [(c, Bs, ctxs) for c in cfgs])


def sec_sdpa_decode_split():
    """FlashAttention-2's decode either side of its split-KV switch. PyTorch's flash_api.cpp splits the
    KV sequence over CTAs only while batch x kv_heads < 0.8 x 2 x SMs (211 on 132 SMs); unsplit, it runs
    the prefill kernel, whose 128-row query tile pads the few packed query heads. costsim predicts a step
    in time between B x Hkv = 208 and 216 (32/8 heads: B 26 -> 27; 16/2 heads: B 105 -> 106)."""
    flash = [b for b in sdpa_backends() if b[0] == "torch-sdpa-flash"]
    grid = [((32, 8, "gqa_32q_8kv"), [8, 20, 24, 26, 27, 28, 32, 40, 48, 96], [4096, 16384]),
            ((16, 2, "gqa_16q_2kv"), [64, 100, 104, 105, 106, 108, 128, 192], [8192, 32768])]
    if C.quick:
        grid = [((32, 8, "gqa_32q_8kv"), [26, 27], [4096])]
    sdpa_decode_grid("sdpa_decode_split", flash, grid)


def sec_sdpa_decode_head_dim():
    """Decode at head dims other than 128: 256 (Qwen3-Next's gated attention, 16 query / 2 KV heads),
    64 (gpt-oss: 64 / 8), and 128 at 16 / 2 heads for comparison in the same run. cuDNN ran the
    Qwen3-Next-like step's decode attention with an sm80 kernel at 1.5 TB/s (batch 16); these records say
    whether that is the head dim, the backend, or the shape."""
    ctxs = [2048, 8192, 32768, 65536, 131072]
    Bs = [1, 4, 16, 64]
    if C.quick:
        ctxs, Bs = [8192], [16]
    for D, cfgs in ((256, [(16, 2, "gqa_16q_2kv_d256")]), (128, [(16, 2, "gqa_16q_2kv")]),
                    (64, [(64, 8, "gqa_64q_8kv_d64")])):
        sdpa_decode_grid("sdpa_decode_head_dim", sdpa_backends(), [(c, Bs, ctxs) for c in cfgs], D)


def sdpa_decode_grid(section, backends, grid, D=128):
    """Time SDPA decode (one query token) at head dim D for each backend over
    [((H, Hkv, variant), batches, contexts)]."""
    for source, backend in backends:
        for (H, Hkv, variant), Bs, ctxs in grid:
            if past_section_end():
                log(f"{section}: section budget reached")
                return
            try:
                mode = sdpa_mode_and_check(source, backend, 2, H, Hkv, 1, 3001, False, f"decode D={D}", D)
            except Exception as exc:
                log(f"{source} decode check crashed: {exc!r}")
                C.skipped.append((f"{source} decode H={H}/{Hkv}", "check crashed"))
                continue
            if mode is None:
                continue
            for B in Bs:
                for ctx in ctxs:
                    kvb = 2.0 * B * Hkv * ctx * D * 2
                    gx = H // Hkv if mode == "expanded" else 1
                    if kvb * gx > 17.2e9:
                        continue
                    if past_section_end():
                        log(f"{section}: section budget reached")
                        return
                    sets = nsets_for(kvb * gx, 20e9)
                    qs = rnd(sets, B, H, 1, D)
                    ks, vs = rnd(sets, B, Hkv * gx, ctx, D), rnd(sets, B, Hkv * gx, ctx, D)
                    try:
                        t = bench(
                            lambda i, b=backend, m=mode, q=qs, k=ks, v=vs: sdpa_call(b, m, q[i], k[i], v[i], False),
                            sets,
                        )
                    except Exception as exc:
                        log(f"{source} decode B={B} ctx={ctx}: {str(exc).splitlines()[0][:200]}")
                        C.skipped.append((f"{source} decode {variant} B={B} ctx={ctx}", "raised"))
                        continue
                    finally:
                        qs = ks = vs = None
                    nbytes = kvb + 2.0 * B * H * D * 2
                    flops = 4.0 * B * H * ctx * D
                    emit(
                        "attention_decode",
                        dict(batch=B, context=ctx, heads=H, kv_heads=Hkv, head_dim=D),
                        "bf16",
                        source,
                        t,
                        flops,
                        nbytes,
                        {"variant": variant, "paged": False, "gqa_mode": mode},
                    )
                    log(
                        f"{source:17s} decode {variant} D={D} B={B:3d} ctx={ctx:6d} {t['med'] * 1e6:9.1f} us "
                        f"{nbytes / t['med'] / 1e9:7.0f} GB/s ({nbytes / t['med'] / 1e9 / max(C.copy_bw, 1):.2f} "
                        f"of copy)"
                    )
                torch.cuda.empty_cache()


# ---------------------------------------------------------------------------------- FlashMLA decode
def sec_flashmla_decode():
    """FlashMLA's dense MLA decode (microbench/flashmla_decode.py over the library that
    microbench/build_flashmla.sh builds) on the microbenchmark's MLA decode grid: DeepSeek-V3's 128 query
    heads over one 576-wide latent KV head in 64-token pages; then 64, 32 and 16 heads, what one GPU holds
    of DeepSeek-V3 at tensor parallelism 2, 4 and 8 (FlashMLA pads the heads to its 64-row tile).
    Skipped where the library is not built."""
    from flashmla_decode import D_QK, D_V, Workspace, flashmla_decode, library_path, load, reference

    if load() is None:
        log(f"flashmla_decode: no usable library at {library_path()} (build it with microbench/build_flashmla.sh)")
        C.skipped.append(("flashmla_decode", "library not built or not Hopper"))
        return
    scale, dev = D_QK ** -0.5, torch.device("cuda")
    q, cache = rnd(2, 128, D_QK), rnd(2, 1024, D_QK)
    if not check("flashmla decode B=2 n=1000", flashmla_decode(q, cache, scale, Workspace(2, 128, 1024, 1000, dev)),
                 reference(q, cache, 1000, scale), 2e-2):
        return
    grid = [(128, [1, 4, 16, 64, 256], [1024, 2048, 4096, 8192, 16384, 32768, 65536, 131072, 262144])]
    grid += [(h, [1, 4, 16, 64, 256], [1024, 4096, 16384, 65536]) for h in (64, 32, 16)]
    if C.quick:
        grid = [(128, [1, 16], [4096, 32768])]
    for H, Bs, ctxs in grid:
        for B in Bs:
            for ctx in ctxs:
                cache_bytes = 2.0 * B * ctx * D_QK
                if cache_bytes > 17.2e9:
                    continue
                if past_section_end():
                    log("flashmla_decode: section budget reached")
                    return
                sets = nsets_for(cache_bytes, 20e9)
                qs, caches = rnd(sets, B, H, D_QK), rnd(sets, B, ctx, D_QK)
                ws = Workspace(B, H, ctx, ctx, dev)
                # the split schedule is planned once, outside the timing: serving engines plan it once per
                # step for all layers (FlashMLA's get_mla_metadata), so it is not part of one layer's kernel
                flashmla_decode(qs[0], caches[0], scale, ws, plan=True)
                try:
                    t = bench(lambda i, q=qs, c=caches, w=ws: flashmla_decode(q[i], c[i], scale, w, plan=False),
                              sets)
                except Exception as exc:
                    log(f"flashmla decode H={H} B={B} ctx={ctx}: {str(exc).splitlines()[0][:200]}")
                    C.skipped.append((f"flashmla decode H={H} B={B} ctx={ctx}", "raised"))
                    continue
                finally:
                    qs = caches = None
                nbytes = cache_bytes + 2.0 * B * H * (D_QK + D_V)  # FlashMLA's own count: cache, q and out
                flops = 2.0 * B * H * ctx * (D_QK + D_V)
                emit("attention_decode", dict(batch=B, context=ctx, heads=H, kv_heads=1, head_dim=D_QK), "bf16",
                     "flashmla", t, flops, nbytes,
                     {"kv_lora_rank": 512, "rope_dim": 64, "v_head_dim": D_V, "variant": f"mla_{H}h_576_512",
                      "paged": True, "page_tokens": 64, "schedule_planned": "once, untimed"})
                log(f"flashmla          decode mla H={H:3d} B={B:3d} ctx={ctx:6d} {t['med'] * 1e6:9.1f} us "
                    f"{flops / t['med'] / 1e12:6.1f} TFLOP/s {nbytes / t['med'] / 1e9:7.0f} GB/s")
            torch.cuda.empty_cache()


# ------------------------------------------------------------------------------------- FlexAttention
def sec_flex():
    from torch.nn.attention.flex_attention import BlockMask, create_block_mask, flex_attention

    flex = torch.compile(flex_attention, dynamic=False)
    H, Hkv, D, BS = 32, 8, 128, 128
    seqs = [2048] if C.quick else [2048, 8192, 32768]
    # one mask_mod for every mask so that one compiled kernel serves them all: the window is a captured
    # tensor (read by the kernel), set to > S for causal and block-sparse masks
    win = torch.tensor(1 << 30, device="cuda", dtype=torch.int64)

    def mask_mod(b, h, q_idx, kv_idx):
        return (q_idx >= kv_idx) & (q_idx - kv_idx < win)

    masks = [
        ("causal", 0, 0),
        ("causal_window1024", 1024, 0),
        ("causal_window4096", 4096, 0),
        ("block_sparse_top8", 0, 8),
        ("block_sparse_top16", 0, 16),
    ]

    def block_sparse(S, topk, B):
        nb = S // BS
        gen = torch.rand(B, H, nb, nb, device="cuda")
        qi = torch.arange(nb, device="cuda").view(nb, 1)
        kj = torch.arange(nb, device="cuda").view(1, nb)
        gen = gen.masked_fill(kj >= qi, -1.0)  # only strictly earlier blocks are candidates
        m = min(topk - 1, nb - 1)
        full_idx = torch.zeros(B, H, nb, nb, dtype=torch.int32, device="cuda")
        full_cnt = torch.clamp(torch.arange(nb, device="cuda"), max=m).to(torch.int32).expand(B, H, nb).contiguous()
        if m > 0:
            top = gen.topk(m, dim=-1).indices  # valid ones (score >= 0) first
            valid = torch.arange(m, device="cuda").view(1, 1, 1, m) < full_cnt.unsqueeze(-1)
            top = torch.where(valid, top, torch.full_like(top, nb - 1))
            top = torch.sort(top, dim=-1).values  # invalid (nb-1) entries sort last
            full_idx[..., :m] = top.to(torch.int32)
        kv_cnt = torch.ones(B, H, nb, dtype=torch.int32, device="cuda")
        kv_idx = torch.zeros(B, H, nb, nb, dtype=torch.int32, device="cuda")
        kv_idx[..., 0] = torch.arange(nb, device="cuda", dtype=torch.int32)
        bm = BlockMask.from_kv_blocks(kv_cnt, kv_idx, full_cnt, full_idx, BLOCK_SIZE=BS, mask_mod=mask_mod)
        # dense token mask for the check
        col = torch.arange(nb, device="cuda").view(1, 1, 1, nb)
        diag = torch.arange(nb, device="cuda").view(1, 1, nb, 1).expand(B, H, nb, nb)
        idx = torch.where(col < full_cnt.unsqueeze(-1), full_idx.long(), diag)  # unused slots -> the diagonal
        dense = torch.zeros(B, H, nb, nb, dtype=torch.bool, device="cuda")
        dense.scatter_(-1, idx, True)
        pairs = sum(BS * (BS + 1) / 2 + BS * BS * min(m, i) for i in range(nb))
        return bm, dense, pairs

    B = 1
    for si, S in enumerate(seqs):
        for name, W, topk in masks:
            if past_section_end():
                log("flex: section budget reached")
                return
            win.fill_(W if W else 1 << 30)
            try:
                if topk:
                    bm, dense, pairs = block_sparse(S, topk, B)
                else:
                    bm = create_block_mask(mask_mod, None, None, S, S, device="cuda", BLOCK_SIZE=BS)
                    dense = None
                    pairs = causal_pairs(S) if not W else (W * (W + 1) / 2 + (S - W) * W if S >= W else causal_pairs(S))
                if si == 0:  # check every mask at the first (smallest) length, before timing any of it
                    q, k, v = rnd(B, H, S, D), rnd(B, Hkv, S, D), rnd(B, Hkv, S, D)
                    t0 = time.time()
                    out = flex(q, k, v, block_mask=bm, enable_gqa=True)
                    torch.cuda.synchronize()
                    log(f"torch-flex {name} S={S}: first call {time.time() - t0:.1f} s (compile)")
                    if dense is not None:
                        tok = dense.repeat_interleave(BS, -1).repeat_interleave(BS, -2)
                        ref = naive_attn(q, k, v, mask=tok, causal=True)
                    else:
                        qi = torch.arange(S, device="cuda").view(S, 1)
                        kj = torch.arange(S, device="cuda").view(1, S)
                        ref = naive_attn(q, k, v, mask=(qi >= kj) & (qi - kj < (W if W else 1 << 30)))
                    ok = check(f"torch-flex prefill {name} B={B} H={H}/{Hkv} S={S}", out, ref, 2e-2)
                    q = k = v = out = ref = None
                    if not ok:
                        masks = [m for m in masks if m[0] != name]
                        C.skipped.append((f"torch-flex {name}", "check failed"))
                        continue
                qn, kn = B * H * S * D, B * Hkv * S * D
                sets = nsets_for((2 * qn + 2 * kn) * 2)
                qs, ks, vs = rnd(sets, B, H, S, D), rnd(sets, B, Hkv, S, D), rnd(sets, B, Hkv, S, D)
                t0 = time.time()
                t = bench(lambda i, q=qs, k=ks, v=vs, m=bm: flex(q[i], k[i], v[i], block_mask=m, enable_gqa=True), sets)
                qs = ks = vs = None
            except Exception as exc:
                log(f"torch-flex {name} S={S}: {exc!r}\n{traceback.format_exc(limit=3)}")
                C.skipped.append((f"torch-flex {name} S={S}", "raised"))
                continue
            flops = 4.0 * D * pairs * B * H
            nbytes = (2.0 * qn + 2.0 * kn) * 2
            extra = {"variant": name, "gqa_mode": "native"}
            if topk:
                extra.update(block_size=BS, blocks_selected=topk, pairs_fraction=sig(pairs / causal_pairs(S)))
            emit(
                "attention_prefill",
                dict(batch=B, seq_len=S, heads=H, kv_heads=Hkv, head_dim=D, causal=True, window=W),
                "bf16",
                "torch-flex",
                t,
                flops,
                nbytes,
                extra,
            )
            log(
                f"torch-flex        prefill {name:18s} B={B} S={S:6d} {t['med'] * 1e3:9.3f} ms "
                f"{flops / t['med'] / 1e12:6.1f} TFLOP/s (bench {time.time() - t0:.1f} s)"
            )
        torch.cuda.empty_cache()


# ------------------------------------------------------------------------------ flash-linear-attention
LIN_MODELS = [
    # variant, model, k-heads, v-heads, d_k, d_v
    ("gdn", "qwen3-next gdn", 16, 32, 128, 128),
    ("kda", "kimi-linear kda", 32, 32, 128, 128),
    ("lightning", "minimax-m1 lightning", 64, 64, 128, 128),
    ("gla", "gla 32h", 32, 32, 128, 128),
]


def lin_inputs(variant, B, T, H, HV, K, V, sets=None):
    """q, k (l2-normalised, as the models do before the kernel), v, gate (log space, fp32), beta (bf16)."""
    lead = (sets,) if sets else ()
    q = F.normalize(rnd(*lead, B, T, H, K).float(), dim=-1).to(torch.bfloat16)
    k = F.normalize(rnd(*lead, B, T, H, K).float(), dim=-1).to(torch.bfloat16)
    v = rnd(*lead, B, T, HV, V)
    beta = None
    if variant in ("gdn", "kda"):
        beta = torch.sigmoid(rnd(*lead, B, T, HV, dtype=torch.float32)).to(torch.bfloat16)
    if variant == "gdn":
        g = F.logsigmoid(rnd(*lead, B, T, HV, dtype=torch.float32) + 3.0)
    elif variant in ("kda", "gla"):
        g = F.logsigmoid(rnd(*lead, B, T, HV, K, dtype=torch.float32) + 3.0)
    else:  # lightning: one data-independent decay per head (MiniMax slopes)
        g = -torch.linspace(0.01, 0.3, HV, device="cuda", dtype=torch.float32)
    return q, k, v, g, beta


def ref_recurrent(q, k, v, g, beta, scale, h0=None):
    """Token-by-token fp32 recurrence. q,k [B,T,H,K]; v [B,T,HV,V]; g log decay [HV] or [B,T,HV] or
    [B,T,HV,K]; beta [B,T,HV] or None (no delta rule). Value head j reads key head j // (HV/H)."""
    B, T, H, K = q.shape
    HV, V = v.shape[2], v.shape[3]
    r = HV // H
    qf = q.float().repeat_interleave(r, 2) * scale
    kf = k.float().repeat_interleave(r, 2)
    vf = v.float()
    S = torch.zeros(B, HV, K, V, device=q.device) if h0 is None else h0.float().clone()
    o = torch.empty(B, T, HV, V, device=q.device)
    for t in range(T):
        if g.dim() == 1:
            S = S * g.exp().view(1, HV, 1, 1)
        elif g.dim() == 3:
            S = S * g[:, t].exp().view(B, HV, 1, 1)
        else:
            S = S * g[:, t].exp().view(B, HV, K, 1)
        kt, vt = kf[:, t], vf[:, t]
        u = vt if beta is None else beta[:, t].float().unsqueeze(-1) * (vt - torch.einsum("bhkv,bhk->bhv", S, kt))
        S = S + kt.unsqueeze(-1) * u.unsqueeze(-2)
        o[:, t] = torch.einsum("bhkv,bhk->bhv", S, qf[:, t])
    return o, S


def fla_chunk_fn(variant):
    if variant == "gdn":
        from fla.ops.gated_delta_rule import chunk_gated_delta_rule

        return "chunk_gated_delta_rule", lambda q, k, v, g, b, s: chunk_gated_delta_rule(
            q, k, v, g, b, scale=s, output_final_state=True
        )
    if variant == "kda":
        from fla.ops.kda import chunk_kda

        return "chunk_kda", lambda q, k, v, g, b, s: chunk_kda(q, k, v, g, b, scale=s, output_final_state=True)
    if variant == "lightning":
        from fla.ops.simple_gla import chunk_simple_gla

        return "chunk_simple_gla(g_gamma)", lambda q, k, v, g, b, s: chunk_simple_gla(
            q, k, v, g_gamma=g, scale=s, output_final_state=True
        )
    from fla.ops.gla import chunk_gla

    return "chunk_gla", lambda q, k, v, g, b, s: chunk_gla(q, k, v, g, scale=s, output_final_state=True)


def fla_recurrent_fn(variant):
    if variant == "gdn":
        from fla.ops.gated_delta_rule import fused_recurrent_gated_delta_rule

        return "fused_recurrent_gated_delta_rule", lambda q, k, v, g, b, s, h: fused_recurrent_gated_delta_rule(
            q, k, v, g=g, beta=b, scale=s, initial_state=h, output_final_state=True
        )
    if variant == "kda":
        from fla.ops.kda import fused_recurrent_kda

        return "fused_recurrent_kda", lambda q, k, v, g, b, s, h: fused_recurrent_kda(
            q, k, v, g, b, scale=s, initial_state=h, output_final_state=True
        )
    if variant == "lightning":
        from fla.ops.simple_gla import fused_recurrent_simple_gla

        return "fused_recurrent_simple_gla(g_gamma)", lambda q, k, v, g, b, s, h: fused_recurrent_simple_gla(
            q, k, v, g_gamma=g, scale=s, initial_state=h, output_final_state=True
        )
    from fla.ops.gla import fused_recurrent_gla

    return "fused_recurrent_gla", lambda q, k, v, g, b, s, h: fused_recurrent_gla(
        q, k, v, gk=g, scale=s, initial_state=h, output_final_state=True
    )


def sec_fla_prefill():
    import fla

    log(f"fla {getattr(fla, '__version__', '?')} from {fla.__file__}")
    CH = 64
    points = (
        [(1, 4096)]
        if C.quick
        else [(1, 1024), (1, 2048), (1, 4096), (1, 8192), (1, 16384), (1, 32768), (4, 8192), (16, 2048), (64, 1024)]
    )
    wanted = os.environ.get("COSTSIM_FLA_VARIANTS", "")  # e.g. "gla": re-measure one variant only
    for variant, model, H, HV, K, V in LIN_MODELS:
        if wanted and variant not in wanted.split(","):
            continue
        if past_section_end():
            log("fla_prefill: section budget reached")
            return
        scale = K**-0.5
        try:
            kname, fn = fla_chunk_fn(variant)
            q, k, v, g, beta = lin_inputs(variant, 2, 300, H, HV, K, V)
            t0 = time.time()
            with torch.inference_mode():
                o, ht = fn(q, k, v, g, beta, scale)
            torch.cuda.synchronize()
            log(f"fla {kname}: first call {time.time() - t0:.1f} s (compile + autotune)")
            ro, rs = ref_recurrent(q, k, v, g, beta, scale)
            ok = check(f"fla {kname} ({variant}) B=2 T=300 H={H}/{HV} output", o, ro, 2e-2)
            ok = check(f"fla {kname} ({variant}) B=2 T=300 final state", ht, rs, 2e-2) and ok
            q = k = v = g = beta = o = ht = None
        except Exception as exc:
            log(f"fla prefill {variant}: check crashed {exc!r}\n{traceback.format_exc(limit=4)}")
            C.skipped.append((f"fla prefill {variant}", "check crashed"))
            continue
        if not ok:
            C.skipped.append((f"fla prefill {variant}", "check failed"))
            continue
        for B, T in points:
            if past_section_end():
                log("fla_prefill: section budget reached")
                return
            nk, nv = B * T * H * K, B * T * HV * V
            gn = B * T * HV * (K if variant in ("kda", "gla") else 1) if variant != "lightning" else HV
            set_bytes = (2 * nk + 2 * nv) * 2 + gn * 4 + (B * T * HV * 2 if beta_used(variant) else 0)
            sets = nsets_for(set_bytes)
            try:
                qs, ks, vs, gs, bs = lin_inputs(variant, B, T, H, HV, K, V, sets=sets)

                def run(i, fn=fn, qs=qs, ks=ks, vs=vs, gs=gs, bs=bs, lt=variant == "lightning", scale=scale):
                    with torch.inference_mode():
                        return fn(qs[i], ks[i], vs[i], gs if lt else gs[i], bs[i] if bs is not None else None, scale)

                t = bench(run, sets)
                qs = ks = vs = gs = bs = None
            except Exception as exc:
                log(f"fla prefill {variant} B={B} T={T}: {exc!r}")
                C.skipped.append((f"fla prefill {variant} B={B} T={T}", "raised"))
                continue
            nch = B * HV * (T / CH)
            if variant in ("gdn", "kda"):
                flops = nch * (4.0 * CH * CH * K + 2.0 * CH * CH * K + 6.0 * CH * K * V + 1.0 * CH * CH * V)
            else:
                flops = nch * (2.0 * K * V * CH + 2.0 * CH * CH * K + 2.0 * CH * K * V + 2.0 * CH * CH * V)
            nbytes = (
                (2.0 * nk + 2.0 * nv) * 2 + gn * 4 + (B * T * HV * 2 if beta_used(variant) else 0) + B * HV * K * V * 4
            )
            emit(
                "linear_prefill",
                dict(variant=variant, batch=B, seq_len=T, heads=H, value_heads=HV, head_dim_k=K, head_dim_v=V),
                "bf16",
                "fla",
                t,
                flops,
                nbytes,
                {"chunk": CH, "model": model, "state_dtype": "fp32", "kernel": kname},
            )
            log(
                f"fla  linear_prefill {variant:9s} B={B:2d} T={T:6d} {t['med'] * 1e3:8.3f} ms "
                f"{flops / t['med'] / 1e12:6.1f} TFLOP/s {nbytes / t['med'] / 1e9:6.0f} GB/s"
            )
        torch.cuda.empty_cache()


def beta_used(variant):
    return variant in ("gdn", "kda")


def sec_fla_decode():
    import fla

    log(f"fla {getattr(fla, '__version__', '?')}")
    Bs = [1, 64, 256] if C.quick else [1, 2, 4, 8, 16, 32, 64, 128, 256, 512]
    for variant, model, H, HV, K, V in LIN_MODELS:
        if past_section_end():
            log("fla_decode: section budget reached")
            return
        scale = K**-0.5
        try:
            kname, fn = fla_recurrent_fn(variant)
            ok = True
            for B in (3, 1):
                q, k, v, g, beta = lin_inputs(variant, B, 1, H, HV, K, V)
                h0 = torch.randn(B, HV, K, V, device="cuda", dtype=torch.float32) * 0.1
                with torch.inference_mode():
                    o, ht = fn(q, k, v, g, beta, scale, h0.clone())
                torch.cuda.synchronize()
                ro, rs = ref_recurrent(q, k, v, g, beta, scale, h0)
                ok = check(f"fla {kname} ({variant}) B={B} one step output", o, ro, 1e-2) and ok
                ok = check(f"fla {kname} ({variant}) B={B} one step state", ht, rs, 1e-4) and ok
        except Exception as exc:
            log(f"fla decode {variant}: check crashed {exc!r}\n{traceback.format_exc(limit=4)}")
            C.skipped.append((f"fla decode {variant}", "check crashed"))
            continue
        if not ok:
            C.skipped.append((f"fla decode {variant}", "check failed"))
            continue
        for B in Bs:
            if past_section_end():
                log("fla_decode: section budget reached")
                return
            sn = B * HV * K * V
            gn = B * HV * K if variant in ("kda", "gla") else B * HV
            io = B * (2 * H * K + 2 * HV * V) * 2
            sets = nsets_for(sn * 4 + io)
            try:
                qs, ks, vs, gs, bs = lin_inputs(variant, B, 1, H, HV, K, V, sets=sets)
                hs = torch.randn(sets, B, HV, K, V, device="cuda", dtype=torch.float32) * 0.1

                def run(i, fn=fn, qs=qs, ks=ks, vs=vs, gs=gs, bs=bs, hs=hs, lt=variant == "lightning", scale=scale):
                    with torch.inference_mode():
                        return fn(
                            qs[i], ks[i], vs[i], gs if lt else gs[i], bs[i] if bs is not None else None, scale, hs[i]
                        )

                t = bench(run, sets)
                qs = ks = vs = gs = bs = hs = None
            except Exception as exc:
                log(f"fla decode {variant} B={B}: {exc!r}")
                C.skipped.append((f"fla decode {variant} B={B}", "raised"))
                continue
            nbytes = 2.0 * sn * 4 + io + gn * 4
            flops = float(B) * HV * K * V * (7 if variant in ("gdn", "kda") else 5)
            emit(
                "linear_decode",
                dict(variant=variant, batch=B, heads=H, value_heads=HV, head_dim_k=K, head_dim_v=V, state_dtype="fp32"),
                "bf16",
                "fla",
                t,
                flops,
                nbytes,
                {"model": model, "kernel": kname},
            )
            log(
                f"fla  linear_decode  {variant:9s} B={B:3d} {t['med'] * 1e6:8.1f} us "
                f"{nbytes / t['med'] / 1e9:6.0f} GB/s ({nbytes / t['med'] / 1e9 / max(C.copy_bw, 1):.2f} of copy)"
            )
        torch.cuda.empty_cache()


# --------------------------------------------------------------------------------------------- main
def main(argv=None):
    argv = sys.argv if argv is None else argv
    ap = common_parser(__doc__, 480.0, list(SECTIONS))
    a = ap.parse_args(argv[1:])
    C.t_start = time.time()
    C.quick = a.quick
    C.deadline = a.deadline if a.deadline else (90.0 if a.quick else 480.0)
    C.logf = open(a.log, "w") if a.log else None  # noqa: SIM115
    if not torch.cuda.is_available():
        print("torch_kernels.py: no CUDA GPU visible to PyTorch", file=sys.stderr)
        return 2
    torch.manual_seed(1234)
    C.gpu_name = torch.cuda.get_device_name(0)
    C.hardware = hardware_slug(C.gpu_name)
    props = torch.cuda.get_device_properties(0)
    C.l2_bytes = int(getattr(props, "L2_cache_size", 50 << 20) or (50 << 20))
    C.out = sys.stdout if a.out == "-" else open(a.out, "w")  # noqa: SIM115
    h = gpu_header(C.gpu_name, C.hardware, argv, C.quick, l2_bytes=C.l2_bytes, deadline_s=C.deadline)
    C.out.write(json.dumps(h) + "\n")
    C.out.flush()
    log(json.dumps(h))
    only = [s for s in SECTIONS if s in a.only.split(",")]
    if "copy" not in only:
        log("copy section skipped: frac_copy_bw not recorded")
    funcs = {
        "copy": sec_copy,
        "sdpa_prefill": sec_sdpa_prefill,
        "sdpa_decode": sec_sdpa_decode,
        "sdpa_decode_split": sec_sdpa_decode_split,
        "sdpa_decode_head_dim": sec_sdpa_decode_head_dim,
        "flex": sec_flex,
        "fla_prefill": sec_fla_prefill,
        "fla_decode": sec_fla_decode,
        "flashmla_decode": sec_flashmla_decode,
    }
    for idx, name in enumerate(only):
        now = time.time()
        left = C.t_start + C.deadline - now
        if left <= 0:
            log(f"deadline reached before section {name}")
            C.skipped.append((name, "deadline"))
            continue
        wsum = sum(WEIGHTS[s] for s in only[idx:])
        C.section_end = now + left * WEIGHTS[name] / wsum
        log(f"=== section {name} (until +{C.section_end - C.t_start:.0f} s)")
        try:
            funcs[name]()
        except Exception as exc:
            log(f"section {name} crashed: {exc!r}\n{traceback.format_exc()}")
            C.errors.append((name, repr(exc)))
        torch.cuda.synchronize()
        torch.cuda.empty_cache()
    # summary
    log("=== summary")
    nfail = sum(1 for c in C.checks if not c[3])
    log(f"checks: {len(C.checks) - nfail}/{len(C.checks)} pass")
    for c in C.checks:
        if not c[3]:
            log(f"  FAILED CHECK {c[0]}: rel_err {c[1]:.3e} > {c[2]:g} (not timed)")
    for what, why in C.skipped:
        log(f"  skipped: {what} ({why})")
    for sec, msg in C.errors:
        log(f"  section error: {sec}: {msg}")
    for (op, src), n in sorted(C.counts.items()):
        log(f"  records {op:18s} {src:17s} {n}")
    log(f"total records {sum(C.counts.values())}, wall {time.time() - C.t_start:.0f} s")
    if C.out is not sys.stdout:
        C.out.close()
    return 4 if nfail else (3 if C.errors else 0)


if __name__ == "__main__":
    sys.exit(main())
