"""Issue 9's speed targets in one run: CLI cold start, per-point cost of estimate and of large sweeps.

    python benchmarks/bench_speed.py     # Markdown table for docs/performance.md
"""

from __future__ import annotations

import platform
import shutil
import statistics
import subprocess
import sys
import time

import numpy as np

import costsim
from costsim.inputs.hardware import load_hardware
from costsim.serving.capacity import evaluate
from costsim.spec.deployment import Deployment


def cold(cmd: list[str], repeats: int = 5) -> float:
    runs = []
    for _ in range(repeats):
        t = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        runs.append(time.perf_counter() - t)
    return statistics.median(runs)


def sweep_seconds(model: str, points: int, repeats: int = 3) -> float:
    spec, hw, dep = costsim.load_model(model), load_hardware("h100-sxm"), Deployment()
    contexts = np.geomspace(1e3, 1e7, points)
    evaluate(spec, hw, dep, contexts[:10])
    runs = []
    for _ in range(repeats):
        t = time.perf_counter()
        evaluate(spec, hw, dep, contexts)  # every serving figure: fit, batch, TTFT, TPOT, $/Mtok x3
        runs.append(time.perf_counter() - t)
    return statistics.median(runs)


def main() -> None:
    exe = shutil.which("costsim")
    print(f"machine: {platform.machine()}, {platform.processor() or '?'}, Python {platform.python_version()}\n")
    print("| case | seconds | target |")
    print("|---|---|---|")
    if exe:
        print(f"| `costsim --help`, cold | {cold([exe, '--help']):.3f} | < 0.3 |")
        print(f"| `costsim estimate` (defaults), cold | {cold([exe, 'estimate']):.3f} | - |")
    print(f"| `python -m costsim.cli --help`, cold | {cold([sys.executable, '-m', 'costsim.cli', '--help']):.3f} | - |")
    for model in ("llama-3.1-8b", "qwen3-next-80b-a3b"):
        for n in (10_000, 1_000_000):
            s = sweep_seconds(model, n)
            print(f"| serving sweep, {model}, {n:,} contexts (in process) | {s:.3f} ({s / n * 1e9:.0f} ns/point) | "
                  f"{'< 2' if n == 1_000_000 else '-'} |")


if __name__ == "__main__":
    main()
