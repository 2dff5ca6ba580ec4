"""A fused MLA decode kernel in Triton (FlashMLA's design, simplified): absorbed multi-head latent
attention over the latent cache in one pass, split-KV for small batches, then a combine kernel.

    q     (B, H, 576)  the absorbed query: 512 latent dims (q_nope @ W_UK) and 64 rope dims
    cache (B, L, 576)  the latent cache: 512 dims of c_kv (the values too) and 64 of the shared rope key
    out   (B, H, 512)  softmax(q . k / sqrt(d)) @ c_kv over the first n_valid tokens

One program handles BLOCK_H heads of one sequence over one split of the context: it reads that part
of the cache once for those heads (the whole head group shares the single latent "KV head"), keeps an
online softmax and a BLOCK_H x 512 fp32 accumulator, and writes an unnormalised partial; the combine
kernel merges the splits. `model_step.py` uses it for the DeepSeek-like stack's decode when it passes
its check against the batched-GEMM form. The default launch configuration is the fastest of
`mla_tune.py`'s sweep on an H200 (measurements/h200-mla-tune.log) at batch >= 8: it reaches 200
TFLOP/s there, a third of what FlashMLA reports. With 64 heads per program (the tile FlashMLA uses,
splitting the accumulator over two warpgroups) it runs 5x slower: a 64 x 512 fp32 accumulator in one
program presumably spills registers. Absorbed MLA decode with 128 heads does about 240 FLOPs per cache
byte, above Hopper's ridge point, so the kernel is bound by its matrix throughput, not by bandwidth.

    TRITON_INTERPRET=1 python3 microbench/mla_decode.py    # checks it on the CPU (Triton's interpreter)
"""

from __future__ import annotations

import math

import torch
import triton
import triton.language as tl

D_LAT, D_ROPE = 512, 64


@triton.jit
def _mla_split(q_ptr, kv_ptr, acc_ptr, m_ptr, l_ptr, n_valid, split_len, scale,
               stride_qb, stride_qh, stride_kb, stride_kn, stride_ab, stride_as, stride_ah, stride_mb, stride_ms,
               BLOCK_H: tl.constexpr, BLOCK_N: tl.constexpr, D_LAT: tl.constexpr, D_ROPE: tl.constexpr):
    b = tl.program_id(0)
    s = tl.program_id(1)
    hb = tl.program_id(2)
    heads = hb * BLOCK_H + tl.arange(0, BLOCK_H)
    lat = tl.arange(0, D_LAT)
    rope = tl.arange(0, D_ROPE)
    q_base = q_ptr + b * stride_qb + heads[:, None] * stride_qh
    q_lat = tl.load(q_base + lat[None, :])
    q_rope = tl.load(q_base + D_LAT + rope[None, :])
    start = s * split_len
    end = tl.minimum(start + split_len, n_valid)
    m_i = tl.full((BLOCK_H,), float("-inf"), dtype=tl.float32)
    l_i = tl.zeros((BLOCK_H,), dtype=tl.float32)
    acc = tl.zeros((BLOCK_H, D_LAT), dtype=tl.float32)
    for n0 in tl.range(0, split_len, BLOCK_N):  # masked past `end` (the last split is shorter)
        keys = start + n0 + tl.arange(0, BLOCK_N)
        valid = keys < end
        k_base = kv_ptr + b * stride_kb + keys[:, None] * stride_kn
        k_lat = tl.load(k_base + lat[None, :], mask=valid[:, None], other=0.0)
        k_rope = tl.load(k_base + D_LAT + rope[None, :], mask=valid[:, None], other=0.0)
        qk = tl.dot(q_lat, tl.trans(k_lat)) + tl.dot(q_rope, tl.trans(k_rope))
        qk = tl.where(valid[None, :], qk * scale, float("-inf"))
        m_new = tl.maximum(m_i, tl.max(qk, 1))
        # a tile with no valid key (past n_valid) keeps m at -inf: subtract 0 so exp gives 0, not NaN
        m_safe = tl.where(m_new == float("-inf"), 0.0, m_new)
        p = tl.exp(qk - m_safe[:, None])
        alpha = tl.exp(m_i - m_safe)
        l_i = l_i * alpha + tl.sum(p, 1)
        acc = acc * alpha[:, None] + tl.dot(p.to(k_lat.dtype), k_lat)
        m_i = m_new
    a_base = acc_ptr + b * stride_ab + s * stride_as + heads[:, None] * stride_ah
    tl.store(a_base + lat[None, :], acc)
    tl.store(m_ptr + b * stride_mb + s * stride_ms + heads, m_i)
    tl.store(l_ptr + b * stride_mb + s * stride_ms + heads, l_i)


@triton.jit
def _mla_combine(acc_ptr, m_ptr, l_ptr, out_ptr, splits,
                 stride_ab, stride_as, stride_ah, stride_mb, stride_ms, stride_ob, stride_oh,
                 BLOCK_H: tl.constexpr, D_LAT: tl.constexpr):
    b = tl.program_id(0)
    hb = tl.program_id(1)
    heads = hb * BLOCK_H + tl.arange(0, BLOCK_H)
    lat = tl.arange(0, D_LAT)
    top = tl.full((BLOCK_H,), float("-inf"), dtype=tl.float32)
    for s in range(0, splits):
        top = tl.maximum(top, tl.load(m_ptr + b * stride_mb + s * stride_ms + heads))
    total = tl.zeros((BLOCK_H,), dtype=tl.float32)
    out = tl.zeros((BLOCK_H, D_LAT), dtype=tl.float32)
    for s in range(0, splits):
        w = tl.exp(tl.load(m_ptr + b * stride_mb + s * stride_ms + heads) - top)  # an empty split weighs 0
        total += w * tl.load(l_ptr + b * stride_mb + s * stride_ms + heads)
        part = tl.load(acc_ptr + b * stride_ab + s * stride_as + heads[:, None] * stride_ah + lat[None, :])
        out += w[:, None] * part
    out = out / total[:, None]
    tl.store(out_ptr + b * stride_ob + heads[:, None] * stride_oh + lat[None, :], out.to(out_ptr.dtype.element_ty))


def splits_for(batch: int, heads: int, n_valid: int, block_h: int, sms: int = 132,
               programs_per_sm: float = 2.0) -> int:
    """Enough programs for `programs_per_sm` per SM, never splits of fewer than 256 tokens."""
    programs = batch * (heads // block_h)
    return max(1, min(math.ceil(programs_per_sm * sms / programs), math.ceil(n_valid / 256)))


def mla_decode(q: torch.Tensor, cache: torch.Tensor, n_valid: int, scale: float, block_h: int = 32,
               block_n: int = 64, splits: int | None = None, out: torch.Tensor | None = None,
               num_warps: int = 4, num_stages: int = 2, programs_per_sm: float = 1.0) -> torch.Tensor:
    """softmax(q . cache[:, :n_valid]^T * scale) @ cache[:, :n_valid, :512], per sequence and head."""
    B, H, D = q.shape
    assert D == D_LAT + D_ROPE and cache.shape[0] == B and cache.shape[2] == D and H % block_h == 0
    assert q.stride(2) == 1 and cache.stride(2) == 1
    sms = torch.cuda.get_device_properties(q.device).multi_processor_count if q.is_cuda else 132
    splits = splits or splits_for(B, H, n_valid, block_h, sms, programs_per_sm)
    split_len = math.ceil(n_valid / splits / block_n) * block_n
    acc = torch.empty(B, splits, H, D_LAT, device=q.device, dtype=torch.float32)
    m = torch.empty(B, splits, H, device=q.device, dtype=torch.float32)
    lsum = torch.empty_like(m)
    out = torch.empty(B, H, D_LAT, device=q.device, dtype=q.dtype) if out is None else out
    _mla_split[(B, splits, H // block_h)](
        q, cache, acc, m, lsum, n_valid, split_len, scale,
        q.stride(0), q.stride(1), cache.stride(0), cache.stride(1), acc.stride(0), acc.stride(1), acc.stride(2),
        m.stride(0), m.stride(1), BLOCK_H=block_h, BLOCK_N=block_n, D_LAT=D_LAT, D_ROPE=D_ROPE,
        num_warps=num_warps if q.is_cuda else 1, num_stages=num_stages if q.is_cuda else 1)
    _mla_combine[(B, H // block_h)](
        acc, m, lsum, out, splits, acc.stride(0), acc.stride(1), acc.stride(2), m.stride(0), m.stride(1),
        out.stride(0), out.stride(1), BLOCK_H=block_h, D_LAT=D_LAT, num_warps=4 if q.is_cuda else 1)
    return out


def reference(q: torch.Tensor, cache: torch.Tensor, n_valid: int, scale: float) -> torch.Tensor:
    kv = cache[:, :n_valid].float()
    scores = torch.einsum("bhd,bnd->bhn", q.float(), kv) * scale
    return torch.einsum("bhn,bnd->bhd", torch.softmax(scores, -1), kv[..., :D_LAT])


def _check(device: str, dtype: torch.dtype) -> None:
    torch.manual_seed(0)
    for B, H, L, n_valid, splits in ((2, 64, 200, 173, 3), (1, 32, 96, 96, 1), (3, 32, 130, 7, 4)):
        q = torch.randn(B, H, D_LAT + D_ROPE, device=device, dtype=dtype)
        cache = torch.randn(B, L, D_LAT + D_ROPE, device=device, dtype=dtype)
        scale = (D_LAT + D_ROPE) ** -0.5
        got = mla_decode(q, cache, n_valid, scale, splits=splits)
        want = reference(q, cache, n_valid, scale)
        err = float((got.float() - want).norm() / want.norm())
        print(f"B={B} H={H} L={L} n_valid={n_valid} splits={splits}: rel_err {err:.2e}")
        assert err < (2e-2 if dtype == torch.bfloat16 else 1e-4), err


if __name__ == "__main__":
    if torch.cuda.is_available():
        _check("cuda", torch.bfloat16)
    else:  # TRITON_INTERPRET=1 on a CPU: fp32, numpy-backed
        _check("cpu", torch.float32)
    print("mla_decode: checks pass")
