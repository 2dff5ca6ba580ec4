"""Monte Carlo speed of `scenario run`: 10,000 samples x 2 models x 3 devices, in process.

    python benchmarks/bench_scenarios.py
"""

from __future__ import annotations

import time

import costsim
from costsim.analysis.task_costs import run_task
from costsim.inputs.hardware import load_hardware
from costsim.inputs.scenarios import load_scenario


def main() -> None:
    models = [costsim.load_model(m) for m in ("llama-3.1-8b", "kimi-linear-48b-a3b")]
    devices = [load_hardware(h) for h in ("h100-sxm", "h200", "b200")]
    for name in ("chat", "coding-agent"):
        sc = load_scenario(name)
        run_task(sc, models[0], devices[0], samples=100)  # warm-up
        start = time.perf_counter()
        for spec in models:
            for hw in devices:
                run_task(sc, spec, hw, samples=10_000, seed=1)
        elapsed = time.perf_counter() - start
        print(f"| {name} | {len(sc.all_turns())} turns | 10,000 samples x 2 models x 3 devices | {elapsed:.2f} s |")


if __name__ == "__main__":
    main()
