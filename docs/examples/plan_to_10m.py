"""Devices needed and $/Mtok out to 10M tokens: the cheapest layout per context (`--plan auto`) for a
dense, an MLA and a hybrid model on H100s, at most 72 per system.

    python docs/examples/plan_to_10m.py [--out-dir docs/img]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from costsim.analysis.sweeps import sweep
from costsim.inputs.engines import load_engine
from costsim.output.plots import sweep_figure
from costsim.spec.deployment import Deployment


def main(out_dir: Path) -> list[Path]:
    from _render import save

    result = sweep(["llama-3.1-70b", "deepseek-v3", "qwen3-next-80b-a3b"], ["h100-sxm"],
                   np.unique(np.round(np.geomspace(8192, 10_000_000, 40))), Deployment(weights="fp8"),
                   plan_auto=True, engine=load_engine("vllm"))
    fig = sweep_figure(result, "usd_per_mtok_output")
    fig.update_layout(title={"text": "USD per million output tokens, cheapest layout of up to 72 H100s per point "
                                     "(fp8 weights)"})
    return save(fig, out_dir, "plan")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out-dir", type=Path, default=Path(__file__).resolve().parent.parent / "img")
    print(*main(ap.parse_args().out_dir), sep="\n")
