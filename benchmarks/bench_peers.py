"""costsim's cost per estimate against the peers that install from PyPI, side by side.

    python -m venv .peers && .peers/bin/pip install llm-analysis genz-llm
    python benchmarks/bench_peers.py --peer-python .peers/bin/python
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

import costsim
from costsim.analysis.sweeps import parse_context_range


def median_time(fn, repeats: int) -> float:
    fn()
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - start)
    return statistics.median(runs)


def costsim_figures() -> dict[str, float]:
    one = median_time(lambda: costsim.estimate("llama-3.1-8b", "h100-sxm", context=8192, batch=1), 30)
    grid = parse_context_range("1k..10M", 200)
    models = ["llama-3.1-8b", "qwen3-next-80b-a3b", "deepseek-v3", "mamba2-2.7b"]
    devices = ["h100-sxm", "h200", "b200", "mi300x", "tpu-v6e", "l40s"]
    small = median_time(lambda: costsim.sweep(models, devices, grid), 5)
    big_grid = np.logspace(3, 7, 100_000)
    big = median_time(lambda: costsim.sweep(["llama-3.1-8b"], ["h100-sxm"], big_grid), 3)
    return {
        "single estimate (s)": one,
        "sweep 4 models x 6 devices x 200 contexts (s)": small,
        "per point in that sweep (s)": small / (4 * 6 * 200),
        "per point in a 10^5-context sweep (s)": big / 100_000,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--peer-python", default=None, help="python of a venv with llm-analysis and genz-llm")
    args = parser.parse_args()
    ours = costsim_figures()
    peers: dict[str, object] = {}
    if args.peer_python:
        script = Path(__file__).with_name("peer_timing.py")
        proc = subprocess.run([args.peer_python, str(script)], capture_output=True, text=True, timeout=1200)
        peers = json.loads(proc.stdout.strip().splitlines()[-1]) if proc.returncode == 0 else {"error": proc.stderr}
    print(f"machine: {platform.machine()}, {platform.processor()}, Python {platform.python_version()}")
    print("\n| costsim | seconds |\n|---|---|")
    for k, v in ours.items():
        print(f"| {k} | {v:.3g} |")
    print("\n| peer | one estimate (s) | costsim single estimate faster by | costsim per sweep point cheaper by |")
    print("|---|---|---|---|")
    for name, sec in peers.items():
        if isinstance(sec, float):
            print(f"| {name} | {sec:.3g} | {sec / ours['single estimate (s)']:.1f}x | "
                  f"{sec / ours['per point in a 10^5-context sweep (s)']:,.0f}x (10^5 sweep), "
                  f"{sec / ours['per point in that sweep (s)']:,.0f}x (4x6x200) |")
        else:
            print(f"| {name} | {sec} | - | - |")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
