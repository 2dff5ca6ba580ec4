"""How long `costsim plan` takes to search every layout up to 72 devices (target: under 1 s).

    python benchmarks/bench_plan.py
"""

from __future__ import annotations

import subprocess
import sys
import time

import costsim
from costsim.inputs.hardware import load_hardware
from costsim.serving.plan import enumerate_layouts, plan
from costsim.spec.deployment import Deployment

CASES = [("llama-3.1-70b", "h100-sxm", 1_000_000, "bf16"), ("deepseek-v3", "h100-sxm", 131_072, "fp8"),
         ("qwen3-235b-a22b", "gb200", 131_072, "bf16"), ("deepseek-v3", "gb200", 10_000_000, "fp8")]


def main() -> None:
    print("| model | hardware | context | layouts | in process (s) | CLI, cold start included (s) |")
    print("|---|---|---|---|---|---|")
    for model, hw_name, context, weights in CASES:
        spec, hw = costsim.load_model(model), load_hardware(hw_name)
        dep = Deployment(weights=weights)
        plan(spec, hw, dep, context)  # warm the per-model caches once, as a long-lived process would
        times = []
        for _ in range(3):
            t = time.perf_counter()
            plan(spec, hw, dep, context, max_devices=72)
            times.append(time.perf_counter() - t)
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "costsim.cli", "plan", "-m", model, "-H", hw_name, "-c", str(context),
                        "--weight-dtype", weights, "-f", "json", "-o", "/dev/null"], check=True)
        cli = time.perf_counter() - t
        n = len(enumerate_layouts(spec, hw, 72))
        print(f"| {model} | {hw_name} | {context:,} | {n} | {sorted(times)[1]:.3f} | {cli:.2f} |")


if __name__ == "__main__":
    main()
