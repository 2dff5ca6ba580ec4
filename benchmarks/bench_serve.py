"""How long `costsim serve` and `costsim frontier` take (goals: serve over 100 concurrency levels x 10 layouts
under 0.5 s; frontier of one model on 5 devices under 2 s). Figures go to docs/performance.md.

    python benchmarks/bench_serve.py
"""

from __future__ import annotations

import platform
import statistics
import subprocess
import sys
import time

import numpy as np

import costsim
from costsim.inputs.engines import load_engine
from costsim.inputs.hardware import load_hardware
from costsim.serving.serve import serve
from costsim.serving.workload import Workload
from costsim.spec.deployment import Deployment
from costsim.spec.layout import Layout

LAYOUTS = [Layout(tp=tp, pp=pp) for tp in (1, 2, 4, 8) for pp in (1, 2, 4) if tp * pp <= 16][:10]
FRONTIER_HW = "h100-sxm,h200,b200,mi300x,tpu-v6e"


def median_time(fn, reps: int = 5) -> float:
    fn()  # warm the per-model caches once, as a long-lived process would
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    spec, hw, engine = costsim.load_model("llama-3.1-70b"), load_hardware("h100-sxm"), load_engine("vllm")
    dep = Deployment(weights="fp8", kv_cache="fp8")
    work = Workload(1024, 1024, concurrency=np.round(np.linspace(1, 1000, 100)))
    levels = len(work.concurrency)

    def serve_all() -> None:
        for layout in LAYOUTS:
            serve(spec, hw, dep, layout, engine, work)

    serve_s = median_time(serve_all)
    frontier_s = median_time(lambda: costsim.frontier("llama-3.1-70b", FRONTIER_HW, weights="fp8", kv_cache="fp8"),
                             reps=3)
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "costsim.cli", "frontier", "-m", "llama-3.1-70b", "-H", FRONTIER_HW,
                    "--weight-dtype", "fp8"], check=True, capture_output=True)
    cli_s = time.perf_counter() - t
    print(f"machine: {platform.processor() or platform.machine()}, Python {platform.python_version()}")
    print("| what | in process (s) | goal (s) |")
    print("|---|---|---|")
    print(f"| serve: {levels} concurrency levels x {len(LAYOUTS)} layouts, Llama-3.1-70B fp8 on H100 | "
          f"{serve_s:.3f} | 0.5 |")
    print(f"| frontier: Llama-3.1-70B fp8 on 5 devices ({FRONTIER_HW}), up to 8 devices each | {frontier_s:.3f} | 2 |")
    print(f"| the same frontier from the CLI, cold start included | {cli_s:.3f} | - |")


if __name__ == "__main__":
    main()
