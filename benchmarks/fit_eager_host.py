"""The eager costs of the pytorch-eager engine profile: library calls measured, two rates fitted.

    python benchmarks/fit_eager_host.py            # print the numbers and the errors they give
    python benchmarks/fit_eager_host.py --write    # and write them into engine_profiles/pytorch-eager.toml

An eager step is host-bound at small sizes: the GPU waits while Python issues each op. costsim charges a
step at least kernels x host_per_kernel_s plus, per attention or recurrent layer, the host time its library
call takes beyond its kernels' launches. Those library costs come straight from
measurements/h200-host-cost.jsonl (microbench/host_cost.py: each call issued alone, the host never waiting
on the GPU): a call's host time less its kernels at the median per-kernel cost of the plain ATen ops.

Two numbers are fitted, both on the Llama-3.1-8B records only (median |log(predicted / measured)|):
  elementwise_bandwidth  the fraction of the streaming rate PyTorch's unfused elementwise ops reach, on the
                         profiler's elementwise device time of each profiled Llama prefill (the GPU's
                         own time, the same within 2% on every leased host; a decode's elementwise kernels
                         are latency, not bytes; grid 0.20-1.00);
  host_per_kernel_s      on the Llama whole-step times (grid 5-40 us).
The Qwen3-Next-like records, the only ones with Gated DeltaNet and gated attention, are held out and
reported apart, per record file (each file is one run on one leased machine).
"""

from __future__ import annotations

import re
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

from costsim.engine.timing import decode_step_time, prefill_time
from costsim.evidence.validate import model_for_record, predict_record
from costsim.inputs.engines import load_engine
from costsim.inputs.hardware import load_hardware
from costsim.inputs.measurements import read_measurements
from costsim.serving.engines import kernel_plan
from costsim.spec.dtypes import Precision

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


def _engine(kernels: dict):
    base = load_engine("pytorch-eager")
    return base.model_copy(update={"kernels": base.kernels.model_copy(update=kernels)})


def errors(records: list[tuple[str, dict]], kernels: dict) -> np.ndarray:
    """predicted / measured - 1 per record, the pytorch-eager profile's [kernels] updated with `kernels`."""
    engine, hw = _engine(kernels), load_hardware("h200")
    return np.array([predict_record(r, hw, engine) / r["time_s"] - 1.0 for _, r in records])


def profiled(records: list[tuple[str, dict]]) -> list[tuple[str, dict]]:
    """The decode and prefill records that carry the profiler's device time by kernel class."""
    return [(f, r) for f, r in records if "profile_s_by_class" in r and r["phase"] in ("decode", "prefill")]


def elementwise_errors(records: list[tuple[str, dict]], kernels: dict) -> np.ndarray:
    """predicted / measured - 1 of each profiled step's elementwise device time."""
    engine, hw = _engine(kernels), load_hardware("h200")
    plan = kernel_plan(engine)
    out = []
    for _, r in records:
        spec, p = model_for_record(r), Precision()
        if r["phase"] == "decode":
            step = decode_step_time(spec, hw, r["context"], r["batch"], p, False, plan)
        else:
            step = prefill_time(spec, hw, r["seq_len"], r.get("context", 0), r["batch"], p,
                                chunk_tokens=int(r["seq_len"]), plan=plan)
        out.append(float(step.by_class["elementwise"]) / r["profile_s_by_class"]["elementwise"] - 1.0)
    return np.array(out)


def _best(grid: np.ndarray, loss) -> float:
    return float(grid[int(np.argmin([loss(x) for x in grid]))])


def _median_log(err: np.ndarray) -> float:
    return float(np.median(np.abs(np.log1p(err))))


def report(label: str, records: list[tuple[str, dict]], err: np.ndarray) -> None:
    groups: dict = defaultdict(list)
    for (f, r), e in zip(records, err, strict=True):
        held = "fitted" if r["model"] == "llama-3.1-8b" else "held out"
        groups[(f, held)].append(e)
        groups[("all files", held)].append(e)
        groups[("all files", "all")].append(e)
    print(label)
    for (f, held), es in sorted(groups.items()):
        es = np.array(es)
        print(f"  {f:40s} {held:9s} {len(es):3d} records  median |err| {np.median(np.abs(es)):6.1%}  "
              f"median err {np.median(es):+6.1%}")


def main() -> None:
    lib = library_costs()
    records = eager_records()
    fixed = {k: v for k, v in lib.items() if not k.startswith("_")}
    print(f"ATen ops alone: {lib['_aten_per_kernel_s'] * 1e6:.1f} us per kernel (host_cost.py)")
    for k, v in fixed.items():
        print(f"{k} = {v:.3g}  (measured, host_cost.py)")
    classes = profiled(records)
    # prefills only: there the bytes set the time; a decode step's elementwise kernels are latency
    fit = [(f, r) for f, r in classes if r["model"] == "llama-3.1-8b" and r["phase"] == "prefill"]
    bandwidth = _best(np.arange(0.20, 1.005, 0.01),
                      lambda x: _median_log(elementwise_errors(fit, {**fixed, "elementwise_bandwidth": x})))
    fixed["elementwise_bandwidth"] = bandwidth
    print(f"elementwise_bandwidth = {bandwidth:.2f}  (fitted on {len(fit)} profiled Llama-3.1-8B prefills)")
    report("elementwise device time, profiled steps:", classes, elementwise_errors(classes, fixed))
    fit = [(f, r) for f, r in records if r["model"] == "llama-3.1-8b"]
    h = _best(np.arange(5e-6, 40.5e-6, 0.5e-6),
              lambda x: _median_log(errors(fit, {**fixed, "host_per_kernel_s": x})))
    print(f"host_per_kernel_s = {h:.3g}  (fitted on {len(fit)} Llama-3.1-8B eager records)")
    report("whole steps:", records, errors(records, {**fixed, "host_per_kernel_s": h}))
    if "--write" in sys.argv:
        path = ROOT / "engine_profiles/pytorch-eager.toml"
        text = path.read_text()
        for key, value in {**fixed, "host_per_kernel_s": h}.items():
            text = re.sub(rf"(?m)^{key} = .*$", f"{key} = {value:.3g}", text, count=1)
        path.write_text(text)
        print(f"wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
