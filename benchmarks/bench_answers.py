"""What answering only for configurations that run costs: the same questions on one device, and with a
point one device cannot hold moved to the cheapest layout that does (the default since it became the rule).

    python benchmarks/bench_answers.py                # the table in docs/performance.md
    python benchmarks/bench_answers.py --exhaustive   # + every preset x profile at 1k, 32k, 1M, 10M (about 9 min)

Each row is the median of three in-process runs under the vllm profile (the command line's default).
--exhaustive runs the default (one device, else the cheapest layout) on the whole grid once and counts the
points that print a figure where nothing runs (must be 0) and those where no layout of up to 72 devices fits.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

import numpy as np

import costsim
from costsim.analysis.sweeps import compare, sweep
from costsim.api import list_models
from costsim.inputs.engines import load_engine

VLLM = load_engine("vllm")
PRESETS = [m["name"] for m in list_models()]


def _median_s(run: Callable[[], object], repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return sorted(times)[len(times) // 2]


CASES: list[tuple[str, Callable[[], object]]] = [
    ("estimate llama-3.1-8b, h100-sxm, 32k (fits one device)",
     lambda: costsim.estimate("llama-3.1-8b", "h100-sxm", context=32_000, engine="vllm")),
    ("estimate llama-3.1-70b, h200, 32k (moved to a layout)",
     lambda: costsim.estimate("llama-3.1-70b", "h200", context=32_000, engine="vllm")),
    ("estimate deepseek-v3, h100-sxm, 32k, --single-device (needs >= N)",
     lambda: costsim.estimate("deepseek-v3", "h100-sxm", context=32_000, engine="vllm", single_device=True)),
    ("compare llama-3.1-70b, all 24 profiles, 32k",
     lambda: compare("llama-3.1-70b", ["all"], 32_000, engine=VLLM)),
    ("compare llama-3.1-70b, all 24 profiles, 32k, --single-device",
     lambda: compare("llama-3.1-70b", ["all"], 32_000, engine=VLLM, single_device=True)),
    ("sweep 22 presets x 24 profiles x 4 contexts, --single-device",
     lambda: sweep(PRESETS, ["all"], np.array([1e3, 3.2e4, 1e6, 1e7]), engine=VLLM, single_device=True)),
    ("sweep llama-3.1-70b on h100-sxm, 40 contexts 8k..10M (most points moved)",
     lambda: sweep(["llama-3.1-70b"], ["h100-sxm"], np.unique(np.round(np.geomspace(8e3, 1e7, 40))), engine=VLLM)),
]


def exhaustive() -> None:
    from costsim.analysis.sweeps import TIMED_METRICS

    started = time.perf_counter()
    result = sweep(PRESETS, ["all"], np.array([1e3, 3.2e4, 1e6, 1e7]), engine=VLLM)
    wrong = unfit = 0
    for s in result.series:
        fits = np.asarray(s["fits_memory"], dtype=bool)
        unfit += int((~fits).sum())
        wrong += sum(int(np.isfinite(np.asarray(s[k], dtype=float)[~fits]).sum()) for k in TIMED_METRICS)
    print(f"\n{len(result.series)} model x profile pairs x 4 contexts in {time.perf_counter() - started:.0f} s: "
          f"{wrong} figures where nothing runs, {unfit} points no layout of up to 72 devices holds")


def main() -> None:
    print("| question | median (s) |")
    print("|---|---|")
    for label, run in CASES:
        print(f"| {label} | {_median_s(run):.2f} |")
    if "--exhaustive" in sys.argv:
        exhaustive()


if __name__ == "__main__":
    main()
