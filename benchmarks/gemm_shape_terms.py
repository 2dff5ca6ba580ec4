"""Which GEMM shape terms the committed cuBLASLt records support (docs/timing.md, GEMMs).

Fits candidate GEMM models to each GPU's `cublas` records with the same rule as `costsim calibrate`
(least squares on log time, soft-L1 loss, every other distinct shape held out) and prints the held-out
error of each:

- rows: matmul_max, matmul_half_rows, matmul_latency_s (the model before the shape terms);
- +K: compute at K / (K + matmul_half_k) of the curve;
- +K +ridge: and compute and memory combined as (C^a + M^a)^(1/a) (what costsim uses now);
- +K +ridge +waves TMxTN: and a wave-quantisation factor for a fixed output tile of TM x TN, tiles split
  along K when they do not fill the SMs: units / (ceil(units / SMs) x SMs).

    python benchmarks/gemm_shape_terms.py
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
from scipy.optimize import least_squares

from costsim.inputs.hardware import load_hardware

ROOT = Path(__file__).resolve().parent.parent
SMS = 132  # H100 SXM and H200
MODELS = [("rows", False, False, None), ("+K", True, False, None), ("+K +ridge", True, True, None),
          ("+K +ridge +waves 128x128", True, True, (128, 128)), ("+K +ridge +waves 128x256", True, True, (128, 256)),
          ("+K +ridge +waves 256x128", True, True, (256, 128))]


def records(gpu: str) -> list[dict]:
    out = []
    for line in (ROOT / "measurements" / f"{gpu}.jsonl").read_text().splitlines():
        r = json.loads(line)
        if r.get("op") == "gemm" and r.get("source") == "cublas":
            out.append(r)
    return out


def wave_factor(m: int, n: int, k: int, tile: tuple[int, int]) -> float:
    tiles = math.ceil(m / tile[0]) * math.ceil(n / tile[1])
    split = max(1, min(SMS // tiles, k // 1024)) if tiles < SMS else 1
    units = tiles * split
    return units / (math.ceil(units / SMS) * SMS)


def predict(x: np.ndarray, rs: list[dict], hw, use_k: bool, ridge: bool, tile) -> np.ndarray:
    top, half_rows, latency = x[0], x[1], x[2]
    half_k = x[3] if use_k else 0.0
    exponent = x[4] if ridge else 0.0
    e = hw.efficiency
    out = []
    for r in rs:
        m, n, k = r["m"], r["n"], r["k"]
        width = 1 if r["dtype"] == "fp8" else 2
        eff = top * m / (m + half_rows) * k / (k + half_k)
        if tile:
            eff *= wave_factor(m, n, k, tile)
        compute = 2.0 * m * n * k / (hw.peak_flops("fp8" if width == 1 else "bf16") * eff)
        moved = (n * k + m * k) * width + m * n * 2
        memory = moved / (hw.bandwidth_bytes_s * e.memory_max * moved / (moved + e.memory_half_bytes))
        both = max(compute, memory) if not ridge else (compute ** exponent + memory ** exponent) ** (1 / exponent)
        out.append(both + latency + e.graph_overhead_s)
    return np.array(out)


def main() -> None:
    print("| GPU | model | held-out median | p90 | max |")
    print("|---|---|---|---|---|")
    for gpu in ("h100-sxm", "h200"):
        hw = load_hardware(gpu)
        rs = records(gpu)
        shapes = sorted({(r["m"], r["n"], r["k"]) for r in rs})
        held = set(shapes[1::2])
        fit = [r for r in rs if (r["m"], r["n"], r["k"]) not in held]
        test = [r for r in rs if (r["m"], r["n"], r["k"]) in held]
        measured_fit = np.log([r["time_s"] for r in fit])
        for name, use_k, ridge, tile in MODELS:
            lo = np.log([0.05, 1.0, 1e-8, 1.0, 1.0])
            hi = np.log([1.0, 8192.0, 3e-5, 8192.0, 64.0])
            start = np.log([0.7, 16.0, 2.4e-6, 64.0, 4.0])

            def residual(x, use_k=use_k, ridge=ridge, tile=tile, fit=fit, measured_fit=measured_fit, hw=hw):
                return np.log(predict(np.exp(x), fit, hw, use_k, ridge, tile)) - measured_fit

            sol = least_squares(residual, start, bounds=(lo, hi), loss="soft_l1", f_scale=0.1)
            err = np.abs(predict(np.exp(sol.x), test, hw, use_k, ridge, tile) / [r["time_s"] for r in test] - 1)
            print(f"| {gpu} | {name} | {100 * np.median(err):.1f}% | {100 * np.percentile(err, 90):.1f}% | "
                  f"{100 * err.max():.1f}% |")


if __name__ == "__main__":
    main()
