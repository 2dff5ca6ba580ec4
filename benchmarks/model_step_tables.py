"""The whole-model-step tables of docs/validation.md, from the committed measurements.

    python benchmarks/model_step_tables.py        # markdown tables on stdout

First a summary per model, phase and GPU; then one row per (model, phase, batch, context) of the
single-GPU runs, with the H100 and H200 columns side by side (the H200's DeepSeek-like decode as measured
with FlashMLA, its Qwen3-Next-like steps from the rerun that picks the faster attention backend), then the
H200's Qwen-like decode on each backend, then the tensor-parallel rows.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from costsim.evidence.validate import validate
from costsim.inputs.measurements import read_measurements

ROOT = Path(__file__).resolve().parent.parent / "measurements"
SINGLE = {"h100-sxm": ["h100-sxm-model-step.jsonl"],
          "h200": ["h200-model-step.jsonl", "h200-model-step-flashmla.jsonl", "h200-model-step-qwen.jsonl",
                   "h200-model-step-mistral.jsonl", "h200-model-step-kimi.jsonl"]}
# which records of a later file replace the same point of an earlier one: FlashMLA's MLA decode replaces the
# stand-in kernels'; the Qwen-like rerun (faster backend per phase) replaces the cuDNN-first run
SUPERSEDES = {"h200-model-step-flashmla.jsonl": lambda r: r.get("attention_kernel") == "flashmla",
              "h200-model-step-qwen.jsonl": lambda r: True}
KERNEL_NOTE = {"torch-bmm-absorbed-mla": "bmm", "triton-mla-decode": "triton", "flashmla": "FlashMLA",
               "torch-sdpa-cudnn": "cuDNN", "torch-sdpa-flash": "FA2", "torch-flex-sliding": "flex"}


def _point(r: dict) -> tuple:
    return r["model_name"], r["phase"], r["batch"], r["context"] if r["phase"] == "decode" else r["seq_len"]


def _rows(files: list[str]) -> dict[tuple, dict]:
    out: dict[tuple, dict] = {}
    for f in files:
        supersedes = SUPERSEDES.get(f, lambda r: False)
        for r in validate(read_measurements(ROOT / f))["records"]:
            if _point(r) not in out or supersedes(r):
                out[_point(r)] = r
    return out


def _cell(r: dict | None, with_kernel: bool = True) -> str:
    if r is None:
        return "— | — | —"
    # the attention kernel where it varies: MLA and head-dim-256 decode, sliding prefill past the window
    noted = with_kernel and ((r["phase"] == "decode" and r["model_name"].startswith(("deepseek", "qwen", "kimi")))
                             or r.get("attention_kernel") == "torch-flex-sliding")
    note = KERNEL_NOTE.get(r.get("attention_kernel", "")) if noted else None
    measured = f"{r['time_s'] * 1e3:.2f} ms" + (f" ({note})" if note else "")
    return f"{measured} | {r['predicted_s'] * 1e3:.2f} ms | {r['error'] * 100:+.1f}%"


def _summary(groups: dict[str, dict[tuple, dict]]) -> None:
    """Per model, phase and GPU: points, median and worst error, and which attention kernels ran."""
    print("| model | phase | GPU | points | median abs err | worst | attention kernel |")
    print("|---|---|---|---|---|---|---|")
    cells: dict[tuple, list[dict]] = {}
    for gpu, rows in groups.items():
        for r in rows.values():
            cells.setdefault((r["model_name"], r["phase"], gpu), []).append(r)
    for (model, phase, gpu), rs in sorted(cells.items()):
        errs = sorted((r["error"] for r in rs), key=abs)
        kernels = ", ".join(sorted({KERNEL_NOTE.get(r.get("attention_kernel", ""), r.get("attention_kernel", ""))
                                    for r in rs}))
        print(f"| {model} | {phase} | {gpu} | {len(rs)} | {np.median(np.abs(errs)) * 100:.1f}% | "
              f"{errs[-1] * 100:+.1f}% | {kernels} |")
    print()


def main() -> None:
    by_hw = {hw: _rows(files) for hw, files in SINGLE.items()}
    _summary({"H100": by_hw["h100-sxm"], "H200": by_hw["h200"], "2 x H200, tp=2": _rows(["h200-x2-model-step.jsonl"])})
    keys = sorted(set(by_hw["h100-sxm"]) | set(by_hw["h200"]), key=lambda k: (k[0], k[1], k[3], k[2]))
    print("| model | phase | batch | context / prompt | H100 measured | H100 costsim | err "
          "| H200 measured | H200 costsim | err |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for k in keys:
        print(f"| {k[0]} | {k[1]} | {k[2]} | {k[3]:,} | {_cell(by_hw['h100-sxm'].get(k))} | "
              f"{_cell(by_hw['h200'].get(k))} |")
    print()
    cudnn = _rows(["h200-model-step.jsonl"])
    flash = _rows(["h200-model-step-qwen.jsonl"])
    print("| batch | context | H200, cuDNN: measured | costsim | err | H200, FA2: measured | costsim | err |")
    print("|---|---|---|---|---|---|---|---|")
    for k in sorted((k for k in flash if k[1] == "decode"), key=lambda k: (k[3], k[2])):
        print(f"| {k[2]} | {k[3]:,} | {_cell(cudnn.get(k), False)} | {_cell(flash[k], False)} |")
    print()
    tp = _rows(["h200-x2-model-step.jsonl"])
    print("| model | phase | batch | context / prompt | 2 x H200, tp=2: measured | costsim | err |")
    print("|---|---|---|---|---|---|---|")
    for k in sorted(tp, key=lambda k: (k[0], k[1], k[3], k[2])):
        print(f"| {k[0]} | {k[1]} | {k[2]} | {k[3]:,} | {_cell(tp[k])} |")


if __name__ == "__main__":
    main()
