"""Fit the CPU-side overheads of the TensorRT-LLM engine profile on its published online-serving table.

    python benchmarks/fit_engine_overheads.py            # print the fit
    python benchmarks/fit_engine_overheads.py --write    # and write it into engine_profiles/trtllm.toml

Three numbers, per-step time not hidden by the GPU model (step_s), per running sequence per step
(per_sequence_s) and the per-request TTFT floor (ttft_floor_s), minimise the median |log(predicted /
measured)| over the records `costsim.evidence.published.fitted_on` selects (TensorRT-LLM's table at fixed
request rates: TTFT, ITL and throughput of Llama-3.1-8B/70B on H100 and H200). Every other published record
is held out; `costsim validate measurements/published/serve.jsonl` reports both sets apart.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np
from scipy.optimize import minimize

from costsim.evidence.published import fitted_on, predict, read_published
from costsim.inputs.engines import load_engine

ROOT = Path(__file__).resolve().parent.parent
SCALE = np.array([1e-3, 1e-5, 1e-2])  # parameters in ms, 10 us and 10 ms units keep the simplex well scaled


def loss(x: np.ndarray, records: list[dict], base) -> float:
    step, per_seq, floor = np.maximum(x, 0.0) * SCALE
    overheads = base.overheads.model_copy(update={"step_s": step, "per_sequence_s": per_seq, "ttft_floor_s": floor,
                                                   "overlapped": False})
    engine = base.model_copy(update={"overheads": overheads})
    errs = [abs(np.log(p / r["value"])) for r in records if (p := predict(r, engine)[0]) is not None]
    return float(np.median(errs))


def main() -> None:
    records = [r for r in read_published(ROOT / "measurements/published/serve.jsonl") if fitted_on(r)]
    base = load_engine("trtllm")
    start = np.array([1.0, 1.0, 1.0])
    best = minimize(loss, start, args=(records, base), method="Nelder-Mead",
                    options={"xatol": 1e-3, "fatol": 1e-5, "maxiter": 300})
    step, per_seq, floor = np.maximum(best.x, 0.0) * SCALE
    print(f"fitted on {len(records)} records: step_s={step:.6g} per_sequence_s={per_seq:.6g} "
          f"ttft_floor_s={floor:.6g}; median |log error| {loss(np.array([0, 0, 0]), records, base):.3f} -> "
          f"{best.fun:.3f}")
    if "--write" in sys.argv:
        path = ROOT / "engine_profiles/trtllm.toml"
        text = path.read_text()
        for key, value in (("step_s", step), ("per_sequence_s", per_seq), ("ttft_floor_s", floor)):
            text = re.sub(rf"(?m)^{key} = .*$", f"{key} = {value:.4g}", text, count=1)
        text = re.sub(r"(?m)^overlapped = .*$", "overlapped = false", text, count=1)
        path.write_text(text)
        print(f"wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
