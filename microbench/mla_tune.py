#!/usr/bin/env python3
"""Sweep the launch configuration of mla_decode.py's fused MLA decode kernel on the GPU.

For each decode shape of the DeepSeek-like stack (128 heads, a 576-wide latent cache) and each
configuration (heads per program, keys per tile, warps, pipeline stages, programs per SM), the kernel
is checked against the math reference, then timed as the median of 15 batches of 20 back-to-back calls
between CUDA events. The figure of merit is the latent-cache read rate: B * n_valid * 576 * 2 bytes
over the time. The log is what picks mla_decode's default configuration.

    python3 microbench/mla_tune.py --log measurements/h200-mla-tune.log
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys

import torch
from mla_decode import D_LAT, D_ROPE, mla_decode, reference

SHAPES = ((1, 4096), (1, 16384), (8, 4096), (32, 4096), (64, 2048), (16, 32768))
HEADS = 128


def time_calls(fn, inner: int = 20, outer: int = 15) -> float:
    for _ in range(3):
        fn()
    times = []
    for _ in range(outer):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(inner):
            fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end) * 1e-3 / inner)
    return statistics.median(times)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--log", default=None)
    a = ap.parse_args()
    logf = open(a.log, "w") if a.log else None  # noqa: SIM115

    def log(msg: str) -> None:
        print(msg, flush=True)
        if logf:
            logf.write(msg + "\n")
            logf.flush()

    log(f"gpu {torch.cuda.get_device_name(0)}, torch {torch.__version__}")
    torch.manual_seed(0)
    scale = (D_LAT + D_ROPE) ** -0.5
    configs = [c for c in itertools.product((16, 32, 64), (16, 32, 64), (4, 8), (1, 2, 3), (1.0, 2.0, 4.0))
               if not (c[0] == 64 and c[1] == 64)]
    for B, n in SHAPES:
        q = torch.randn(B, HEADS, D_LAT + D_ROPE, device="cuda", dtype=torch.bfloat16)
        cache = torch.randn(B, n, D_LAT + D_ROPE, device="cuda", dtype=torch.bfloat16)
        want = reference(q, cache, n, scale) if B * n <= 65536 else None
        cache_bytes = B * n * (D_LAT + D_ROPE) * 2
        rows = []
        for bh, bn, warps, stages, pps in configs:
            kw = dict(block_h=bh, block_n=bn, num_warps=warps, num_stages=stages, programs_per_sm=pps)
            try:
                got = mla_decode(q, cache, n, scale, **kw)
                if want is not None:
                    err = float((got.float() - want).norm() / want.norm())
                    if err > 2e-2:
                        log(f"CHECK B={B} n={n} {kw}: rel_err {err:.2e} FAIL")
                        continue
                t = time_calls(lambda q=q, cache=cache, n=n, kw=kw: mla_decode(q, cache, n, scale, **kw))
            except Exception as exc:  # an out-of-resources config is a data point, not a failure
                log(f"  B={B} n={n} {kw}: {str(exc).splitlines()[0][:120]}")
                continue
            rows.append((t, kw))
            log(f"  B={B:3d} n={n:6d} bh={bh:2d} bn={bn:2d} w={warps} st={stages} pps={pps:.0f}: "
                f"{t * 1e6:8.1f} us  {cache_bytes / t / 1e9:7.0f} GB/s")
        rows.sort(key=lambda r: r[0])
        for t, kw in rows[:3]:
            log(f"BEST B={B} n={n}: {t * 1e6:.1f} us {cache_bytes / t / 1e9:.0f} GB/s {kw}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
