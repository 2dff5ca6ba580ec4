"""The whole-model-step tables of docs/validation.md, from the committed measurements.

    python benchmarks/model_step_tables.py        # markdown tables on stdout

One row per (model, phase, batch, context) of the single-GPU runs, with the H100 and H200 columns side by
side (the H200's DeepSeek-like decode as measured with FlashMLA), then the tensor-parallel rows.
"""

from __future__ import annotations

from pathlib import Path

from costsim.spec.measurement import read_measurements
from costsim.validate import validate

ROOT = Path(__file__).resolve().parent.parent / "measurements"
SINGLE = {"h100-sxm": ["h100-sxm-model-step.jsonl"],
          "h200": ["h200-model-step.jsonl", "h200-model-step-flashmla.jsonl"]}
KERNEL_NOTE = {"torch-bmm-absorbed-mla": "bmm", "triton-mla-decode": "triton", "flashmla": "FlashMLA"}


def _rows(files: list[str]) -> dict[tuple, dict]:
    records = [r for f in files for r in read_measurements(ROOT / f)]
    out: dict[tuple, dict] = {}
    for r in validate(records)["records"]:
        size = r["context"] if r["phase"] == "decode" else r["seq_len"]
        key = (r["model_name"], r["phase"], r["batch"], size)
        # the FlashMLA file replaces the stand-in kernels' MLA decode for the same point
        if key in out and r.get("attention_kernel") != "flashmla":
            continue
        out[key] = r
    return out


def _cell(r: dict | None) -> str:
    if r is None:
        return "— | — | —"
    note = KERNEL_NOTE.get(r.get("attention_kernel", "")) if r["model_name"].startswith("deepseek") else None
    measured = f"{r['time_s'] * 1e3:.2f} ms" + (f" ({note})" if note and r["phase"] == "decode" else "")
    return f"{measured} | {r['predicted_s'] * 1e3:.2f} ms | {r['error'] * 100:+.1f}%"


def main() -> None:
    by_hw = {hw: _rows(files) for hw, files in SINGLE.items()}
    keys = sorted(set(by_hw["h100-sxm"]) | set(by_hw["h200"]), key=lambda k: (k[0], k[1], k[3], k[2]))
    print("| model | phase | batch | context / prompt | H100 measured | H100 costsim | err "
          "| H200 measured | H200 costsim | err |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for k in keys:
        print(f"| {k[0]} | {k[1]} | {k[2]} | {k[3]:,} | {_cell(by_hw['h100-sxm'].get(k))} | "
              f"{_cell(by_hw['h200'].get(k))} |")
    print()
    tp = _rows(["h200-x2-model-step.jsonl"])
    print("| model | phase | batch | context / prompt | 2 x H200, tp=2: measured | costsim | err |")
    print("|---|---|---|---|---|---|---|")
    for k in sorted(tp, key=lambda k: (k[0], k[1], k[3], k[2])):
        print(f"| {k[0]} | {k[1]} | {k[2]} | {k[3]:,} | {_cell(tp[k])} |")


if __name__ == "__main__":
    main()
