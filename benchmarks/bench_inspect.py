"""Speed of `costsim inspect` (cold CLI start, every preset) and of vectorised cost sweeps.

    python benchmarks/bench_inspect.py        # prints a Markdown table; figures go in docs/performance.md
"""

from __future__ import annotations

import platform
import statistics
import subprocess
import sys
import time

import numpy as np

import costsim
from costsim.inputs.models import preset_names


def cold_cli_seconds(name: str, repeats: int = 3) -> float:
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "costsim.cli", "inspect", name, "-c", "1M"], check=True,
                       capture_output=True)
        runs.append(time.perf_counter() - start)
    return statistics.median(runs)


def sweep_seconds(name: str, points: int) -> float:
    spec = costsim.load_model(name)
    t = np.logspace(3, 7, points)
    start = time.perf_counter()
    costsim.cache_bytes(spec, t)
    costsim.decode_cost(spec, t, 64)
    costsim.prefill_cost(spec, t)
    return time.perf_counter() - start


def main() -> None:
    print(f"machine: {platform.processor() or platform.machine()}, Python {platform.python_version()}, "
          f"numpy {np.__version__}")
    print("\n| preset | `costsim inspect NAME -c 1M`, cold, median of 3 (s) |\n|---|---|")
    times = {name: cold_cli_seconds(name) for name in preset_names()}
    for name, sec in times.items():
        print(f"| {name} | {sec:.3f} |")
    print(f"\nslowest: {max(times.values()):.3f} s")
    print("\n| preset | points | cache + decode(batch 64) + prefill sweep (s) |\n|---|---|---|")
    for name in ("llama-3.1-8b", "deepseek-v3", "qwen3-next-80b-a3b", "nemotron-h-8b"):
        for points in (10_000, 1_000_000):
            print(f"| {name} | {points:,} | {sweep_seconds(name, points):.3f} |")


if __name__ == "__main__":
    main()
