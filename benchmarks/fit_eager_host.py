"""The host costs of the pytorch-eager engine profile: library calls measured, the per-kernel rate fitted.

    python benchmarks/fit_eager_host.py            # print the numbers and the errors they give
    python benchmarks/fit_eager_host.py --write    # and write them into engine_profiles/pytorch-eager.toml

An eager step is host-bound: the GPU waits while Python issues each op. costsim charges a step at least
kernels x host_per_kernel_s plus, per attention or recurrent layer, the host time its library call takes
beyond its kernels' launches. Those library costs come straight from measurements/h200-host-cost.jsonl
(microbench/host_cost.py: each call issued alone, the host never waiting on the GPU): a call's host time
less its kernels at the median per-kernel cost of the plain ATen ops. host_per_kernel_s is then the one
number fitted, on the Llama-3.1-8B eager whole-step records only (median |log(predicted / measured)|,
grid 5-40 us); the Qwen3-Next-like records, the only ones with Gated DeltaNet and gated attention, are
held out and reported apart, per record file (each file is one run on one leased machine).
"""

from __future__ import annotations

import re
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

from costsim.hardware import load_hardware
from costsim.serving.engines import load_engine
from costsim.spec.measurement import read_measurements
from costsim.validate import predict_record

ROOT = Path(__file__).resolve().parent.parent
HOST_COST = ROOT / "measurements/h200-host-cost.jsonl"


def library_costs() -> dict[str, float]:
    calls = {r["call"]: r for r in read_measurements(HOST_COST) if r.get("op") == "host_call"}
    per_kernel = float(np.median([r["time_s"] / r["kernels_per_call"] for name, r in calls.items()
                                  if name.startswith("aten_")]))

    def beyond(names: list[str]) -> float:
        return float(np.median([calls[n]["time_s"] - calls[n]["kernels_per_call"] * per_kernel for n in names]))

    return {"host_attention_call_s": beyond([n for n in calls if n.startswith("sdpa_")]),
            "host_recurrent_decode_call_s": beyond(["fla_gdn_decode"]),
            "host_recurrent_prefill_call_s": beyond(["fla_gdn_prefill"]),
            "_aten_per_kernel_s": per_kernel}


def eager_records() -> list[tuple[str, dict]]:
    out = []
    for path in sorted((ROOT / "measurements").glob("h200-model-step-eager*.jsonl")):
        out += [(path.name, r) for r in read_measurements(path)
                if r.get("op") == "model_step" and r.get("step_style") == "eager"]
    return out


def errors(records: list[tuple[str, dict]], kernels: dict) -> np.ndarray:
    """predicted / measured - 1 per record, the pytorch-eager profile's [kernels] updated with `kernels`."""
    base = load_engine("pytorch-eager")
    engine = base.model_copy(update={"kernels": base.kernels.model_copy(update=kernels)})
    hw = load_hardware("h200")
    return np.array([predict_record(r, hw, engine) / r["time_s"] - 1.0 for _, r in records])


def main() -> None:
    lib = library_costs()
    records = eager_records()
    fit = [(f, r) for f, r in records if r["model"] == "llama-3.1-8b"]
    grid = np.arange(5e-6, 40.5e-6, 0.5e-6)
    fixed = {k: v for k, v in lib.items() if not k.startswith("_")}
    losses = [float(np.median(np.abs(np.log1p(errors(fit, {**fixed, "host_per_kernel_s": h}))))) for h in grid]
    h = float(grid[int(np.argmin(losses))])
    print(f"ATen ops alone: {lib['_aten_per_kernel_s'] * 1e6:.1f} us per kernel (host_cost.py)")
    for k, v in fixed.items():
        print(f"{k} = {v:.3g}  (measured, host_cost.py)")
    print(f"host_per_kernel_s = {h:.3g}  (fitted on {len(fit)} Llama-3.1-8B eager records)")
    err = errors(records, {**fixed, "host_per_kernel_s": h})
    groups: dict = defaultdict(list)
    for (f, r), e in zip(records, err, strict=True):
        held = "fitted" if r["model"] == "llama-3.1-8b" else "held out"
        groups[(f, held)].append(e)
        groups[("all files", held)].append(e)
        groups[("all files", "all")].append(e)
    for (f, held), es in sorted(groups.items()):
        es = np.array(es)
        print(f"  {f:40s} {held:9s} {len(es):3d} records  median |err| {np.median(np.abs(es)):6.1%}  "
              f"median err {np.median(es):+6.1%}")
    if "--write" in sys.argv:
        path = ROOT / "engine_profiles/pytorch-eager.toml"
        text = path.read_text()
        for key, value in {**fixed, "host_per_kernel_s": h}.items():
            text = re.sub(rf"(?m)^{key} = .*$", f"{key} = {value:.3g}", text, count=1)
        path.write_text(text)
        print(f"wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
