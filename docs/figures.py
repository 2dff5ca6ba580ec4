"""The accuracy figures the README and the docs quote, computed from the committed measurements.

    python docs/figures.py          # every figure, and the sentences that quote it

tests/test_docs.py recomputes them and fails when a page's sentence no longer states the value the data
gives, so a refit or a new measurement file cannot leave a stale number in the prose.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
KERNEL_OPS_LEFT_OUT = ("model_step", "collective", "host_call", "launch")


def _pct(x: float) -> str:
    return f"{abs(x) * 100:.1f}%"


def _signed(x: float) -> str:
    return f"{'−' if x < 0 else '+'}{abs(x) * 100:.1f}%"


@lru_cache(maxsize=1)
def _validated() -> dict:
    from costsim.evidence.validate import validate
    from costsim.inputs.measurements import read_measurements

    records = [r for p in sorted((ROOT / "measurements").glob("*.jsonl")) for r in read_measurements(p)]
    return validate(records)


def kernel_figures() -> dict[str, str]:
    """Median |error| of the calibrated model on every committed kernel record, per fitted GPU."""
    records = [r for r in _validated()["records"] if r["op"] not in KERNEL_OPS_LEFT_OUT]
    out = {"kernel_records": f"{len(records):,}"}
    for hw, key in (("h100-sxm", "h100"), ("h200", "h200")):
        errors = np.abs([r["error"] for r in records if r["hardware"] == hw])
        out[f"kernel_records_{key}"] = f"{len(errors):,}"
        out[f"kernel_median_{key}"] = _pct(float(np.median(errors)))
    return out


def published_figures() -> dict[str, str]:
    """Held-out error of `serve` on the published production measurements."""
    from costsim.evidence.published import check, read_published

    path = ROOT / "measurements/published/serve.jsonl"
    result = check(read_published(path))
    s = result["summary"]
    return {"published_records": f"{len(result['records']):,}",
            "published_tpot_median_signed": _signed(s["held_out/tpot_itl"]["median_signed"]),
            "published_throughput_median_abs": _pct(s["held_out/throughput"]["median_abs"]),
            "published_ttft_median_abs": f"{s['held_out/ttft']['median_abs'] * 100:.0f}%"}


def step_figures() -> dict[str, str]:
    """Whole model steps with CUDA graphs, as tests/test_validation.py::test_end_to_end_model_steps checks them:
    the steps whose attention ran on a kernel costsim does not price, and the Kimi-Linear-like hybrid (reported
    apart), left out."""
    steps = [r for r in _validated()["records"] if r["op"] == "model_step" and "step_style" not in r]
    apart = [r for r in steps if r["model_name"] == "kimi-linear-dense-ffn"
             or (r["phase"] == "decode" and r["model_name"] == "deepseek-v3-mla-16l"
                 and r["attention_kernel"] != "flashmla")
             or (r["phase"] == "decode" and r["model_name"] == "qwen3-next-dense-ffn"
                 and r["attention_kernel"] == "torch-sdpa-cudnn")]
    errors = np.abs([r["error"] for r in steps if r not in apart])
    return {"step_points": f"{len(errors)}", "step_median": _pct(float(np.median(errors))),
            "step_largest": _pct(float(np.max(errors)))}


def count_figures() -> dict[str, str]:
    from costsim.api import list_hardware, list_models

    real = [m for m in list_models() if m["file"].endswith(".json")]
    return {"real_presets": f"{len(real)}", "profiles": f"{len(list_hardware())}"}


def crossover_figures() -> dict[str, str]:
    """The README's crossover: Qwen3-Next against Qwen3-32B on 4 H100s under vLLM."""
    from costsim.analysis.crossover import crossover
    from costsim.inputs.engines import load_engine
    from costsim.spec.layout import Layout

    out = {}
    for metric, key in (("ttft_s", "crossover_ttft_tokens"), ("usd_per_mtok_output", "crossover_output_tokens")):
        r = crossover("qwen3-32b", "qwen3-next-80b-a3b", "h100-sxm", metric, 100, 10_000_000, layout=Layout(tp=4),
                      engine=load_engine("vllm"))
        out[key] = f"{r['crossings'][0]['context_tokens']:,.0f}"
    return out


def figures() -> dict[str, str]:
    return {**kernel_figures(), **published_figures(), **step_figures(), **count_figures(), **crossover_figures()}


# (page, sentence with {figure} slots): each must appear in the page exactly as formatted
QUOTED = [
    ("README.md", "kernel-time error {kernel_median_h100} (H100) / {kernel_median_h200} (H200) over "
                  "{kernel_records} records"),
    ("README.md", "Against {published_records} published production measurements"),
    ("README.md", "TPOT/ITL median\n{published_tpot_median_signed}, throughput median |error| "
                  "{published_throughput_median_abs}, TTFT median |error| {published_ttft_median_abs}"),
    ("docs/validation.md", "Against all {kernel_records} committed kernel records the calibrated model has a "
                           "median error of {kernel_median_h100} (H100, {kernel_records_h100}\nrecords) and "
                           "{kernel_median_h200} (H200, {kernel_records_h200})"),
    ("docs/faq.md", "median error is {kernel_median_h100} and {kernel_median_h200} per kernel"),
    ("README.md", "({step_points} points, median {step_median},"),
    ("docs/faq.md", "({step_points} points, median {step_median})"),
    ("docs/validation.md", "({step_points} points, median {step_median}, largest {step_largest})"),
    ("README.md", "{real_presets} real presets"),
    ("README.md", "on {profiles} accelerator profiles"),
    ("README.md", "beats dense Qwen3-32B from {crossover_ttft_tokens}\ntokens, and its output tokens are cheaper "
                  "from {crossover_output_tokens} tokens"),
]


def main() -> None:
    values = figures()
    for name, value in values.items():
        print(f"{name:36s} {value}")
    print()
    for page, sentence in QUOTED:
        text = sentence.format(**values)
        state = "ok" if text in (ROOT / page).read_text(encoding="utf-8") else "DRIFTED"
        print(f"{state:8s} {page}: {' '.join(text.split())}")


if __name__ == "__main__":
    main()
