"""FlashMLA's Hopper MLA decode kernel through ctypes: the production kernel that costsim's MLA decode
assumes (docs/validation.md), called on PyTorch tensors without a PyTorch extension build.

The shared library comes from `microbench/build_flashmla.sh FLASHMLA_DIR CUTLASS_DIR OUT.so` (FlashMLA is
not vendored here). `load()` finds it through $COSTSIM_FLASHMLA_SO, or `.flashmla/libcostsim_flashmla.so`
at the repository root, and returns None when there is none or it will not load.

    q     (B, H, 576) bf16  the absorbed query (512 latent dims, 64 rope dims)
    cache (B, L, 576) bf16  the latent cache, L a multiple of 64: it is handed to FlashMLA as 64-token
                            pages, sequence b owning pages b * L/64 ... (b + 1) * L/64 - 1
    out   (B, H, 512)       softmax(q . k * scale) @ c_kv over the first n_valid tokens

    python3 microbench/flashmla_decode.py    # on an H100/H200: checks it against the math
"""

from __future__ import annotations

import ctypes
import os
from pathlib import Path

import torch

D_QK, D_V, PAGE = 576, 512, 64
_LIB: ctypes.CDLL | None = None
_TRIED = False


def library_path() -> Path:
    env = os.environ.get("COSTSIM_FLASHMLA_SO")
    return Path(env) if env else Path(__file__).resolve().parent.parent / ".flashmla" / "libcostsim_flashmla.so"


def load() -> ctypes.CDLL | None:
    """The library, or None (not built, not Hopper, or it fails to load); tried once per process."""
    global _LIB, _TRIED
    if _TRIED:
        return _LIB
    _TRIED = True
    path = library_path()
    if not path.is_file() or not torch.cuda.is_available() or torch.cuda.get_device_capability() != (9, 0):
        return None
    try:
        lib = ctypes.CDLL(str(path))
    except OSError:
        return None
    lib.costsim_flashmla_sm_parts.argtypes = [ctypes.c_int, ctypes.c_int]
    lib.costsim_flashmla_sm_parts.restype = ctypes.c_int
    p = ctypes.c_void_p
    lib.costsim_flashmla_decode.argtypes = [p, p, p, ctypes.c_int, p, p, p, p, p, p, p, ctypes.c_int, ctypes.c_int,
                                            ctypes.c_int, ctypes.c_int, ctypes.c_float, ctypes.c_int, p]
    lib.costsim_flashmla_decode.restype = ctypes.c_int
    _LIB = lib
    return lib


class Workspace:
    """Page table, lengths and split buffers for one (batch, heads, cache length, n_valid): built once
    outside a CUDA graph capture, reused by every call (and every replay)."""

    def __init__(self, batch: int, heads: int, cache_len: int, n_valid: int, device: torch.device):
        lib = load()
        if lib is None:
            raise RuntimeError(f"FlashMLA library not available ({library_path()})")
        if cache_len % PAGE or n_valid > cache_len:
            raise ValueError(f"cache length {cache_len} must be a multiple of {PAGE} and >= n_valid {n_valid}")
        sms = torch.cuda.get_device_properties(device).multi_processor_count
        self.parts = lib.costsim_flashmla_sm_parts(sms, heads)
        self.pages_per_seq = cache_len // PAGE
        i32, f32 = dict(dtype=torch.int32, device=device), dict(dtype=torch.float32, device=device)
        self.page_table = torch.arange(batch * self.pages_per_seq, **i32).view(batch, self.pages_per_seq)
        self.seqlens = torch.full((batch,), n_valid, **i32)
        self.sched = torch.empty(self.parts, 8, **i32)
        self.splits = torch.empty(batch + 1, **i32)
        self.lse = torch.empty(batch, heads, **f32)
        self.lse_accum = torch.empty(batch + self.parts, heads, **f32)
        self.out_accum = torch.empty(batch + self.parts, heads, D_V, **f32)
        self.batch, self.heads, self.cache_len = batch, heads, cache_len


def flashmla_decode(q: torch.Tensor, cache: torch.Tensor, scale: float, ws: Workspace,
                    out: torch.Tensor | None = None, plan: bool = True) -> torch.Tensor:
    """plan=False reuses the split schedule an earlier call with this workspace computed (the layers of
    one decode step share it, as serving engines share FlashMLA's get_mla_metadata)."""
    B, H, D = q.shape
    if (B, H, cache.shape[1]) != (ws.batch, ws.heads, ws.cache_len) or D != D_QK or cache.shape[2] != D_QK:
        raise ValueError("q / cache shapes do not match the workspace")
    if q.dtype != torch.bfloat16 or cache.dtype != torch.bfloat16 or not (q.is_contiguous() and cache.is_contiguous()):
        raise ValueError("q and cache must be contiguous bf16")
    out = torch.empty(B, H, D_V, device=q.device, dtype=q.dtype) if out is None else out
    rc = load().costsim_flashmla_decode(
        q.data_ptr(), cache.data_ptr(), ws.page_table.data_ptr(), ws.pages_per_seq, ws.seqlens.data_ptr(),
        out.data_ptr(), ws.lse.data_ptr(), ws.sched.data_ptr(), ws.splits.data_ptr(), ws.lse_accum.data_ptr(),
        ws.out_accum.data_ptr(), B, H, B * ws.pages_per_seq, ws.parts, scale, int(plan),
        torch.cuda.current_stream(q.device).cuda_stream)
    if rc != 0:
        raise RuntimeError(f"FlashMLA decode failed with CUDA error {rc}")
    return out


def reference(q: torch.Tensor, cache: torch.Tensor, n_valid: int, scale: float) -> torch.Tensor:
    kv = cache[:, :n_valid].float()
    scores = torch.einsum("bhd,bnd->bhn", q.float(), kv) * scale
    return torch.einsum("bhn,bnd->bhd", torch.softmax(scores, -1), kv[..., :D_V])


def check() -> float:
    """Largest relative error against the math over a few shapes (odd lengths, a partial page)."""
    torch.manual_seed(0)
    worst = 0.0
    for B, H, L, n_valid in ((2, 128, 256, 173), (1, 128, 4096, 4096), (5, 128, 1024, 1000), (3, 16, 128, 65)):
        q = torch.randn(B, H, D_QK, device="cuda", dtype=torch.bfloat16)
        cache = torch.randn(B, L, D_QK, device="cuda", dtype=torch.bfloat16)
        scale = D_QK ** -0.5
        ws = Workspace(B, H, L, n_valid, q.device)
        got = flashmla_decode(q, cache, scale, ws)
        want = reference(q, cache, n_valid, scale)
        err = float((got.float() - want).norm() / want.norm())
        worst = max(worst, err)
        print(f"B={B} H={H} L={L} n_valid={n_valid}: rel_err {err:.2e}")
    return worst


if __name__ == "__main__":
    if load() is None:
        raise SystemExit(f"flashmla_decode.py: no usable library at {library_path()} (Hopper GPU needed)")
    err = check()
    print("flashmla_decode: checks pass" if err < 2e-2 else f"flashmla_decode: FAIL ({err:.2e})")
    raise SystemExit(0 if err < 2e-2 else 1)
